"""Regions side by side: results in order, and an interrupted run does not wait for the work in flight."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

import pytest

from carbon_pipeline.assets.side_by_side import MAX_CONCURRENT_REGIONS, map_regions

BLOCKED_SECONDS = 60


class Terminated(BaseException):
    """What the run worker's SIGINT raises in its main thread when a run is terminated."""


@pytest.fixture
def sigint_terminates() -> Iterator[None]:
    def terminate(signum: int, frame: FrameType | None) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGINT, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def test_results_come_in_the_order_of_the_regions() -> None:
    assert map_regions(lambda region: region.lower(), ["CAISO_NORTH", "PJM_DC", "IE", "DE", "FR"], "test") == [
        "caiso_north",
        "pjm_dc",
        "ie",
        "de",
        "fr",
    ]


def test_an_interrupt_ends_the_call_while_work_is_in_flight_and_drops_the_regions_not_started(
    sigint_terminates: None,
) -> None:
    release, started, finished = threading.Event(), [], []
    all_started = threading.Barrier(MAX_CONCURRENT_REGIONS + 1)

    def blocked(region: int) -> int:
        started.append(region)
        all_started.wait()
        release.wait(BLOCKED_SECONDS)
        finished.append(region)
        return region

    def interrupt_once_all_started() -> None:
        all_started.wait()
        os.kill(os.getpid(), signal.SIGINT)

    interrupter = threading.Thread(target=interrupt_once_all_started)
    interrupter.start()
    try:
        with pytest.raises(Terminated):
            map_regions(blocked, range(3 * MAX_CONCURRENT_REGIONS), "test")
        assert finished == [], "returned only once the work in flight was over"
    finally:
        release.set()
        interrupter.join()
    assert sorted(started) == list(range(MAX_CONCURRENT_REGIONS)), "regions not yet started were started anyway"
