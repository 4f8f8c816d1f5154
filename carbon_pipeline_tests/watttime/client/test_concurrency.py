"""The WattTime client under concurrency: chunks fetched side by side and returned in order, the cap on
requests in flight, a failed chunk stopping the call, and the request rate limit across threads.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from carbon_pipeline.watttime.client import WattTimeClient
from carbon_pipeline.watttime.errors import WattTimeBadRequestError
from carbon_pipeline.watttime.simulator import Fault, SimulatorServer
from carbon_pipeline_tests.support.watttime_calls import HISTORICAL, one_hour, requests_to

QUARTER_YEAR = (datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 3, 31, tzinfo=UTC))  # 90 days: three chunks


def chunk_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("watttime-chunk")]


def test_concurrent_chunks_come_back_in_order_and_complete(
    start_simulator: Callable[..., SimulatorServer], make_client: Callable[..., WattTimeClient]
) -> None:
    slow_sim = start_simulator(latency_seconds=0.1)  # keeps each chunk in flight long enough to overlap
    start, end = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 5, 1, tzinfo=UTC)  # 121 days: five chunks
    chunks = make_client(slow_sim.base_url).historical("CAISO_NORTH", start, end)
    edges = [start + timedelta(days=30) * n for n in range(5)] + [end]
    assert [(chunk.start, chunk.end) for chunk in chunks] == list(itertools.pairwise(edges))
    for chunk in chunks:
        times = chunk.frame["point_time"]
        assert times.is_monotonic_increasing
        assert times.iloc[0] == pd.Timestamp(chunk.start) and times.iloc[-1] < pd.Timestamp(chunk.end)
    assert sum(len(chunk.frame) for chunk in chunks) == 121 * 288
    stats = slow_sim.state.stats()
    assert sorted(query["start"] for query in stats["historical_queries"]) == [edge.isoformat() for edge in edges[:-1]]
    assert 2 <= stats["in_flight_peak"] <= 4
    assert stats["logins"] == 1
    assert chunk_threads() == []


def test_requests_in_flight_are_capped_across_threads(
    start_simulator: Callable[..., SimulatorServer], make_client: Callable[..., WattTimeClient]
) -> None:
    slow_sim = start_simulator(latency_seconds=0.1)
    client = make_client(slow_sim.base_url, max_concurrent_requests=2)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda region: client.historical(region, *QUARTER_YEAR), ["CAISO_NORTH", "DE", "FR"]))
    assert [len(chunks) for chunks in results] == [3, 3, 3]
    stats = slow_sim.state.stats()
    assert stats["requests"][HISTORICAL] == 9
    assert stats["in_flight_peak"] == 2


def test_threads_that_find_the_token_stale_share_one_login(
    start_simulator: Callable[..., SimulatorServer], make_client: Callable[..., WattTimeClient]
) -> None:
    slow_sim = start_simulator(latency_seconds=0.05)  # the renewal is still in flight when the other threads look
    # The client assumes WattTime's 30-minute life; this margin makes its token stale 0.5 s after each login.
    client = make_client(slow_sim.base_url, token_refresh_margin_seconds=30 * 60 - 0.5)
    one_hour(client)
    time.sleep(0.7)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda region: client.historical(region, *QUARTER_YEAR), ["CAISO_NORTH", "DE", "FR"]))
    assert [sum(len(chunk.frame) for chunk in chunks) for chunks in results] == [90 * 288] * 3
    stats = slow_sim.state.stats()
    assert stats["logins"] == 2
    assert stats["statuses"][401] == 0


def test_a_failed_chunk_raises_its_error_and_stops_the_call(
    start_simulator: Callable[..., SimulatorServer],
    make_client: Callable[..., WattTimeClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    slow_sim = start_simulator(latency_seconds=0.2)  # healthy chunks are still in flight when the failure is known
    client = make_client(slow_sim.base_url, max_attempts=5, max_retry_seconds=60.0)
    # The first chunk request to arrive is refused outright; the next ones are told to come back in 30 s,
    # a wait the failure must cut short.
    slow_sim.state.inject(Fault(kind="status", status=400, path=HISTORICAL))
    slow_sim.state.inject(Fault(kind="status", status=503, retry_after=30, count=50, path=HISTORICAL))
    started = time.monotonic()
    with pytest.raises(WattTimeBadRequestError, match="HTTP 400"):
        client.historical("CAISO_NORTH", datetime(2023, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC))
    assert time.monotonic() - started < 10
    assert chunk_threads() == []
    stats = slow_sim.state.stats()
    assert stats["statuses"][400] == 1
    assert stats["requests"][HISTORICAL] <= 4  # those in flight when it failed; 13 chunks, no retry sent
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1 and "WattTimeBadRequestError" in errors[0].getMessage()
    slow_sim.state.clear_faults()
    assert len(client.historical("CAISO_NORTH", *QUARTER_YEAR)) == 3  # no slot or permit was left taken


def test_rate_limit_holds_for_concurrent_chunked_calls(
    sim: SimulatorServer, make_client: Callable[..., WattTimeClient]
) -> None:
    client = make_client(requests_per_second=10.0)
    regions = ["CAISO_NORTH", "DE", "FR", "UK"]
    with ThreadPoolExecutor(max_workers=len(regions)) as pool:
        list(pool.map(lambda region: client.historical(region, *QUARTER_YEAR), regions))
    stats = sim.state.stats()
    arrivals = sorted(stats["arrivals"]["/login"] + stats["arrivals"][HISTORICAL])
    assert len(arrivals) == 1 + 3 * len(regions)
    # The client spaces every eleventh request 1.05 s after the first; 0.9 s leaves room for scheduling jitter
    # in the simulator's request threads while still catching a limiter that lets a burst through.
    busiest = max(bisect.bisect_left(arrivals, arrival + 0.9) - index for index, arrival in enumerate(arrivals))
    assert busiest <= 10
    assert arrivals[10] - arrivals[0] >= 0.9


def test_request_rate_is_limited_across_threads(
    sim: SimulatorServer, make_client: Callable[..., WattTimeClient]
) -> None:
    client = make_client(requests_per_second=10.0)
    client.my_access()  # the login and this call take the first two permits
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=5) as pool:
        list(pool.map(lambda _: client.my_access(), range(25)))
    elapsed = time.monotonic() - started
    assert 1.8 <= elapsed < 10
    assert requests_to(sim, "/v3/my-access") == 26
