"""Revised values on the simulated /v3/historical: a seeded share, `last_updated`, and `updated_since`."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from benchmarks.official_client import official_client
from carbon_pipeline.watttime.simulator import SimulatorConfig, SimulatorServer, moer_value
from carbon_pipeline.watttime.simulator.signal import revised_value
from carbon_pipeline_tests.support.simulator_session import NOW, ClientFactory, Sim
from carbon_pipeline_tests.support.standalone_simulator import CARBON_PIPELINE, standalone_simulator

LAG = timedelta(seconds=120)
DELAY = timedelta(hours=6)
REVISIONS = {"revision_share": 0.01, "revision_delay_seconds": DELAY.total_seconds()}
WEEK = ("2025-01-02T00:00:00+00:00", "2025-01-08T23:55:00+00:00")


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _truth(point: dict[str, Any]) -> float:
    return moer_value("CAISO_NORTH", _time(point["point_time"]))


def _revised(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [point for point in points if point["value"] != _truth(point)]


@pytest.fixture
def sim(make_sim: Callable[..., Sim]) -> Sim:
    return make_sim(**REVISIONS)


def test_a_small_seeded_share_of_points_is_revised_the_same_way_every_time(
    sim: Sim, make_sim: Callable[..., Sim]
) -> None:
    points = sim.historical(*WEEK).json()["data"]
    revised = _revised(points)
    assert len(points) == 7 * 288
    assert 0 < len(revised) <= 0.02 * len(points)
    assert make_sim(**REVISIONS).historical(*WEEK).json()["data"] == points
    for point in revised:
        assert point["value"] == revised_value("co2_moer", _truth(point)) != _truth(point)


def test_last_updated_is_the_publication_or_the_revision_time(sim: Sim) -> None:
    points = sim.historical(*WEEK).json()["data"]
    revised = {point["point_time"] for point in _revised(points)}
    for point in points:
        delay = DELAY if point["point_time"] in revised else timedelta(0)
        assert _time(point["last_updated"]) == _time(point["point_time"]) + LAG + delay
        assert point["last_updated"].endswith("+00:00")


def test_a_value_is_revised_only_once_its_delay_has_passed(sim: Sim) -> None:
    first = _revised(sim.historical(*WEEK).json()["data"])[0]
    moment = first["point_time"]
    revision_time = _time(moment) + LAG + DELAY
    sim.clock.now = revision_time - timedelta(seconds=1)
    (before,) = sim.historical(moment, moment).json()["data"]
    assert before == {"point_time": moment, "value": _truth(first), "last_updated": (_time(moment) + LAG).isoformat()}
    sim.clock.now = revision_time
    (after,) = sim.historical(moment, moment).json()["data"]
    assert after == first


def test_updated_since_keeps_the_points_updated_at_or_after_it(sim: Sim) -> None:
    points = sim.historical(*WEEK).json()["data"]
    since = _revised(points)[0]["last_updated"]
    updated = sim.historical(*WEEK, updated_since=since).json()["data"]
    assert updated == [point for point in points if _time(point["last_updated"]) >= _time(since)]
    assert updated[0]["last_updated"] == since
    assert len(updated) < len(points)


def test_updated_since_after_every_update_returns_no_points(sim: Sim) -> None:
    later = (NOW + timedelta(seconds=1)).isoformat()
    reply = sim.historical(*WEEK, updated_since=later)
    assert reply.status_code == 200
    assert reply.json()["data"] == []


def test_without_revisions_points_carry_last_updated_only_when_updated_since_is_asked(
    make_sim: Callable[..., Sim],
) -> None:
    sim = make_sim()
    plain = sim.historical(*WEEK).json()["data"]
    assert all(set(point) == {"point_time", "value"} for point in plain)
    since = "2025-01-08T00:02:00+00:00"  # when the day's first point was published: the bound is inclusive
    updated = sim.historical(*WEEK, updated_since=since).json()["data"]
    assert [point["value"] for point in updated] == [_truth(point) for point in updated]
    assert updated[0] == {"point_time": "2025-01-08T00:00:00+00:00", "value": _truth(updated[0]), "last_updated": since}
    assert len(updated) == 288


@pytest.mark.parametrize(
    ("updated_since", "status"), [("2025-01-08T00:00:00", 400), ("last week", 422)], ids=["naive", "unparseable"]
)
def test_a_bad_updated_since_is_refused_like_start_and_end(sim: Sim, updated_since: str, status: int) -> None:
    assert sim.historical(*WEEK, updated_since=updated_since).status_code == status


@pytest.mark.parametrize(("share", "delay_seconds"), [(1.5, 3600.0), (-0.1, 3600.0), (0.01, -1.0)])
def test_revision_settings_out_of_range_are_refused(share: float, delay_seconds: float) -> None:
    with pytest.raises(ValueError, match="revision"):
        SimulatorConfig(revision_share=share, revision_delay_seconds=delay_seconds)


@pytest.fixture
def revising_simulator() -> Iterator[SimulatorServer]:
    config = SimulatorConfig(clock=lambda: NOW, revision_share=0.01, revision_delay_seconds=DELAY.total_seconds())
    with SimulatorServer(config) as server:
        yield server


def test_the_official_sdk_reads_revised_values_and_last_updated(revising_simulator: SimulatorServer) -> None:
    """The SDK (1.4.0) has no `updated_since` argument; it reads what every reply carries."""
    start, end = _time(WEEK[0]), _time(WEEK[1])
    with official_client("WattTimeHistorical", revising_simulator.base_url) as sdk:
        frame = sdk.get_historical_pandas(start, end, "CAISO_NORTH")
    assert len(frame) == 7 * 288
    last_updated = pd.to_datetime(frame["last_updated"], utc=True)
    truth = [moer_value("CAISO_NORTH", moment.to_pydatetime()) for moment in frame["point_time"]]
    revised = frame["value"] != truth
    assert revised.any()
    assert (last_updated[revised] - frame["point_time"][revised] == LAG + DELAY).all()
    assert (last_updated[~revised] - frame["point_time"][~revised] == LAG).all()


def test_the_standalone_simulator_revises_what_its_options_say(client_factory: ClientFactory) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("WATTTIME_")}
    options = ["--lag-seconds", "0", "--revision-share", "1", "--revision-delay-seconds", "60"]
    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
    with standalone_simulator(options, env) as (base_url, _):
        chunks = client_factory(base_url).historical_updates(
            "CAISO_NORTH", end - timedelta(hours=1), end, end - timedelta(days=1)
        )
    frame = pd.concat([chunk.frame for chunk in chunks], ignore_index=True)
    assert len(frame) == 12
    for point in frame.itertuples():
        assert point.value == revised_value("co2_moer", moer_value("CAISO_NORTH", point.point_time.to_pydatetime()))
        assert point.last_updated == point.point_time + timedelta(seconds=60)


@pytest.mark.parametrize(
    ("option", "value", "phrase"),
    [("--revision-share", "1.5", "'1.5' is not a share from 0 to 1"), ("--revision-delay-seconds", "-1", "0 or more")],
)
def test_the_standalone_simulator_refuses_bad_revision_options_naming_them(
    option: str, value: str, phrase: str
) -> None:
    done = subprocess.run(
        [CARBON_PIPELINE, "simulator", option, value], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert f"error: argument {option}: " in done.stderr and phrase in done.stderr
