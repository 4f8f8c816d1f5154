"""WattTime's limits are per account: processes sharing a limits folder stay within them together.

Real worker processes, each with its own client and transport, send at once over loopback to one simulator,
whose arrival log is the judge. Without a shared folder the same workers exceed the limits, so the checks
can fail.
"""

from __future__ import annotations

import time
from itertools import pairwise
from pathlib import Path

import pytest

from carbon_pipeline.rate_limits import SharedBudgets, account_file_stem
from carbon_pipeline.watttime.limits import WattTimeLimits, watttime_rates
from carbon_pipeline.watttime.simulator import SIMULATOR_PASSWORD, SIMULATOR_USERNAME, SimulatorConfig, SimulatorServer
from carbon_pipeline_tests.support.limits_workers import Arrivals, busiest, run_workers

WORKERS = 3
REQUESTS_PER_WORKER = 7  # 24 requests with the logins: over 2 s at 10/s, more than 10 at once without
# Logins: at most 2 per 1.5 s here, so three workers' first logins cannot all land together.
LOGIN_LIMIT = 2
LOGIN_WINDOW_SECONDS = 1.5
# Windows a little shorter than the limits' leave room for jitter between a permit and its arrival while
# still catching a burst: permits at the limit put the eleventh request 1 s after the first.
REQUEST_WINDOW_SECONDS = 0.9
LOGIN_CHECK_WINDOW_SECONDS = 1.2


@pytest.fixture
def simulator() -> SimulatorServer:
    with SimulatorServer(SimulatorConfig()) as server:
        yield server


def _arrivals_after(simulator: SimulatorServer, folders: list[Path | None]) -> Arrivals:
    run_workers(
        simulator.base_url,
        folders,
        requests_per_worker=REQUESTS_PER_WORKER,
        login_limit=LOGIN_LIMIT,
        login_window_seconds=LOGIN_WINDOW_SECONDS,
    )
    arrivals = Arrivals.from_stats(simulator.state.stats())
    assert len(arrivals.requests) == WORKERS * (REQUESTS_PER_WORKER + 1)
    assert len(arrivals.logins) == WORKERS
    return arrivals


def test_processes_sharing_a_limits_folder_keep_the_account_rate_and_login_limits(
    simulator: SimulatorServer, tmp_path: Path
) -> None:
    folder = tmp_path / "watttime_limits"
    arrivals = _arrivals_after(simulator, [folder] * WORKERS)
    assert busiest(arrivals.requests, REQUEST_WINDOW_SECONDS) <= 10
    assert busiest(arrivals.logins, LOGIN_CHECK_WINDOW_SECONDS) <= LOGIN_LIMIT
    # One file per account, named by a hash: neither the username nor any secret is on disk.
    stem = account_file_stem(SIMULATOR_USERNAME)
    assert {path.name for path in folder.iterdir()} >= {f"{stem}.sqlite", f"{stem}.sqlite.lock"}
    assert all(path.name.startswith(stem) for path in folder.iterdir())
    for path in folder.iterdir():
        content = path.read_bytes()
        assert SIMULATOR_USERNAME.encode() not in content and SIMULATOR_PASSWORD.encode() not in content


def test_processes_with_their_own_limits_exceed_the_account_limits(simulator: SimulatorServer, tmp_path: Path) -> None:
    arrivals = _arrivals_after(simulator, [tmp_path / f"own_{index}" for index in range(WORKERS)])
    assert busiest(arrivals.requests, REQUEST_WINDOW_SECONDS) > 10
    assert busiest(arrivals.logins, LOGIN_CHECK_WINDOW_SECONDS) > LOGIN_LIMIT


def test_permits_are_spaced_rather_than_let_through_in_a_burst(tmp_path: Path) -> None:
    """Ten permits at once and ten more a second later would put more than ten arrivals in one second
    as soon as some requests are held up between permit and send."""
    limits = WattTimeLimits(SharedBudgets(tmp_path, SIMULATOR_USERNAME, watttime_rates(10, 100, 300)))
    try:
        taken = []
        for _ in range(4):
            limits.wait_for_request()
            taken.append(time.monotonic())
    finally:
        limits.close()
    assert all(later - earlier >= 0.09 for earlier, later in pairwise(taken)), taken
