"""Fault matrix of the forecasts: each way WattTime or InfluxDB can spoil a forecast, injected into one run.

The measurement matrix (``test_fault_matrix.py``) in the same shape, for ``carbon_forecast`` and the
cleanest windows derived from it in the same step. Every case runs the real multi-asset on a Dagster
instance against the shared WattTime simulator and a fresh InfluxDB database behind a fresh shim, and checks:

(a) the outcome: the retry policy absorbed the fault and the data is exact, or the run failed with a
    message naming the problem, the region and the issue interval, declaring the failure kind and
    retryability the alert and gap-filling sensors act on, after exactly the expected WattTime calls;
(b) what reached InfluxDB: not a single line (forecast, headline or window) of a failing region, and for
    every other region exactly the forecast the simulator issued (``issued_forecast``), point by point,
    and the cleanest windows of that forecast;
(c) recovery: once the fault clears, the same issue intervals run again end exactly as the truth, with
    both assets (forecast and windows) materialized.

Archived issues get a day of their own per case, so partitions never overlap on the shared instance. Live
cases fetch the interval under way from ``/v3/forecast`` and get an instance of their own, as they all
share that interval. Rows join the fault table printed at the end of the session. That a forecast outage
holds back no measurement is in ``sensors/test_schedule_tick.py``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import dagster as dg
import pytest

from carbon_pipeline.assets.carbon_forecast import ASSET_NAME, VALID_FORECAST_CHECK, WINDOW_ASSET_NAME
from carbon_pipeline.coverage import floor_interval
from carbon_pipeline.forecast_validation import IssueWindow
from carbon_pipeline.partitions import INTERVAL, region_partition_key
from carbon_pipeline.run_outcomes import FAILED_REGIONS, FAILURE_KIND, RETRYABLE, FailureKind
from carbon_pipeline.watttime.simulator import Fault, SimulatorServer
from carbon_pipeline_tests.support.fault_report import FaultRow, record_fault, without_boilerplate
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.support.influxdb_shim import InfluxDBShim
from carbon_pipeline_tests.support.pipeline_harness import (
    ForecastPoints,
    Windows,
    check_evaluation,
    declared_failure,
    failure_message,
    forecast_truth,
    influxdb_resource,
    materialize_forecasts,
    stored_forecasts,
    stored_windows,
    watttime_resource,
    window_truth,
)

Layer = Literal["WattTime", "InfluxDB"]
Outcome = Literal["recovered", "failed", "isolated"]
Arrange = Callable[["Scene"], None]

ARCHIVE = "/v3/forecast/historical"
LIVE = "/v3/forecast"
FIRST_DAY = datetime(2025, 3, 3, tzinfo=UTC)
WATTTIME_OPTIONS: dict[str, object] = {"max_attempts": 3, "max_retry_seconds": 3.0, "timeout_seconds": 2.0}
INFLUXDB_OPTIONS: dict[str, object] = {"max_attempts": 3, "max_retry_seconds": 3.0, "write_timeout_seconds": 2.0}
RETRY_AFTER_SECONDS = 1
# A live case needs its run to start in the interval it computed: closer to the interval's end, it waits.
LIVE_MARGIN = timedelta(seconds=20)
# Adjacent in the partitions' region order: a range from one to the other covers exactly these two.
TWO_REGIONS = ("CAISO_NORTH", "PJM_DC")


# ##### THE SCENE A CASE RUNS IN


@dataclass
class Scene:
    """One case's world: the simulator, an instance, its own shim and database, its issue intervals."""

    case: ForecastFault
    first: datetime
    simulator: SimulatorServer
    shim: InfluxDBShim
    server: InfluxDBServer
    database: str
    instance: dg.DagsterInstance

    def issues(self) -> list[datetime]:
        return [self.first + index * INTERVAL for index in range(self.case.intervals)]

    def window(self, region: str) -> IssueWindow:
        return IssueWindow(region, self.first, self.first + self.case.intervals * INTERVAL)

    def written_regions(self) -> tuple[str, ...]:
        """The regions a failed run still wrote and materialized."""
        return tuple(region for region in self.case.regions if region not in self.case.failing_regions)

    def partition_keys(self, regions: tuple[str, ...] | None = None) -> set[str]:
        chosen = self.case.regions if regions is None else regions
        return {str(region_partition_key(region, issue)) for region in chosen for issue in self.issues()}

    def materialize(self) -> dg.ExecuteInProcessResult:
        """One run over the case's regions and issue intervals, as a single-run backfill launches it."""
        resources = {
            "watttime": watttime_resource(self.simulator.base_url, **WATTTIME_OPTIONS),
            "point_sink": influxdb_resource(self.shim.url, self.database, **INFLUXDB_OPTIONS),
        }
        regions = (self.case.regions[0], self.case.regions[-1])
        return materialize_forecasts(resources, regions, self.first, self.issues()[-1], self.instance)

    def series(self, region: str) -> list[str]:
        """Every series of ``region`` in the database, whatever the measurement."""
        return [row["key"] for row in self.server.query(f"SHOW SERIES WHERE region = '{region}'", self.database)]

    def stored(self, region: str) -> tuple[ForecastPoints, Windows]:
        """The forecast points of ``region`` in InfluxDB, and their cleanest windows."""
        return stored_forecasts(self.server, self.database, region), stored_windows(self.server, self.database, region)

    def truth(self, region: str) -> tuple[ForecastPoints, Windows]:
        return forecast_truth(region, self.issues()), window_truth(region, self.issues())

    def materialized(self, asset: str = ASSET_NAME) -> set[str]:
        return set(self.instance.get_materialized_partitions(dg.AssetKey(asset))) & self.partition_keys()


# ##### CASES


def clear_queued_faults(scene: Scene) -> None:
    scene.simulator.state.clear_faults()
    scene.shim.reset()


@dataclass(frozen=True)
class ForecastFault:
    """One row of the matrix: how to provoke the fault, what the run must do, how the fault clears.

    ``outcome`` is ``recovered`` (the retry policy absorbed the fault), ``failed`` (nothing written) or
    ``isolated`` (the fault hit ``failing`` alone: the other regions were written and materialized).
    ``calls`` are the requests the faulty run sends to ``path``, ``writes`` its InfluxDB write requests;
    ``kind`` and ``retryable`` what its failure declares for each failing region.
    """

    fault: str
    layer: Layer
    outcome: Outcome
    arrange: Arrange
    kind: FailureKind | None = None
    shown: tuple[str, ...] = ()
    retryable: bool = False
    path: str = ARCHIVE
    calls: int = 1
    writes: int = 0
    clear: Arrange = clear_queued_faults
    regions: tuple[str, ...] = ("CAISO_NORTH",)
    failing: tuple[str, ...] | None = None
    intervals: int = 1
    live: bool = False
    first: datetime | None = None
    min_seconds: float = 0.0

    @property
    def id(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", f"{self.layer} {self.fault}".lower()).strip("-")

    @property
    def failing_regions(self) -> tuple[str, ...]:
        if self.outcome == "recovered":
            return ()
        return self.regions if self.failing is None else self.failing


def injected(fault: Fault) -> Arrange:
    """The fault applies to the next request(s) it matches."""
    return lambda scene: scene.simulator.state.inject(fault)


def archive_fault(kind: str, **options: Any) -> Arrange:
    return injected(Fault(kind=kind, path=ARCHIVE, **options))


def influxdb_down(scene: Scene) -> None:
    scene.shim.refuse_connections()


def influxdb_back(scene: Scene) -> None:
    scene.shim.accept_connections()
    scene.shim.reset()


def rejected(fault: str, kind: str, *shown: str) -> ForecastFault:
    """A forecast whose content is wrong: the blocking check fails and not a line of it is written."""
    return ForecastFault(fault, "WattTime", "failed", archive_fault(kind), FailureKind.DATA_REJECTED, shown)


def watttime_fails(
    fault: str, arrange: Arrange, *shown: str, outcome: Outcome = "failed", **options: Any
) -> ForecastFault:
    return ForecastFault(fault, "WattTime", outcome, arrange, FailureKind.WATTTIME, shown, **options)


def watttime_recovers(fault: str, arrange: Arrange, **options: Any) -> ForecastFault:
    return ForecastFault(fault, "WattTime", "recovered", arrange, calls=2, writes=1, **options)


def not_stored(fault: str, arrange: Arrange, *shown: str, **options: Any) -> ForecastFault:
    """A write that failed for good: every region and issue of the run is named, none of them stored."""
    cause = ("forecasts not stored", *shown)
    return ForecastFault(
        fault, "InfluxDB", "failed", arrange, FailureKind.INFLUXDB_WRITE, cause, retryable=True, **options
    )


_CASES = [
    # ----- a 200 reply whose forecast is wrong
    rejected("short horizon", "short_horizon", "144 points", "horizon complete: 288 points over 24 h"),
    rejected("gap inside the forecast (missing point)", "missing_point", "287 points", "first missing"),
    rejected("out-of-range values", "out_of_range", "99999.0", "-5.0", "less_than_or_equal_to(4000.0)"),
    rejected("null values", "nulls", "None", "not_nullable"),
    rejected("wrong units", "wrong_units", "percentile", "isin(['lbs_co2_per_mwh'])"),
    rejected("duplicate point with another value", "conflicting_duplicates", "multiple_fields_uniqueness"),
    # An exact copy of a point is kept once, with a warning, as for measurements: the forecast is stored.
    ForecastFault("exact duplicate point", "WattTime", "recovered", archive_fault("duplicates"), writes=1),
    ForecastFault(
        "stale generated_at, live (interval under way)",
        "WattTime",
        "failed",
        injected(Fault("stale_generated_at", path=LIVE)),
        FailureKind.DATA_INCOMPLETE,
        ("has not issued a forecast in this interval", "newest generated_at", "nothing written"),
        retryable=True,
        path=LIVE,
        live=True,
    ),
    # ----- WattTime refuses or fails
    watttime_fails(
        "403 region without forecast access (the other region is written)",
        archive_fault("invalid_scope", region="PJM_DC"),
        "plan does not cover forecasts for region PJM_DC",
        outcome="isolated",
        calls=2,
        writes=1,
        regions=TWO_REGIONS,
        failing=("PJM_DC",),
    ),
    watttime_fails(
        "404 historical forecast outside the archive",
        archive_fault("outside_archive"),
        "historical-forecast archive holds no forecast of region CAISO_NORTH",
        "HTTP 404",
    ),
    watttime_fails(
        "503 beyond the retry budget",
        archive_fault("status", status=503, count=3),
        "gave up after 3 attempt(s)",
        "HTTP 503",
        retryable=True,
        calls=3,
    ),
    watttime_recovers(
        "429 with Retry-After",
        archive_fault("status", status=429, retry_after=RETRY_AFTER_SECONDS),
        min_seconds=RETRY_AFTER_SECONDS,
    ),
    watttime_recovers("503 unavailable", archive_fault("status", status=503)),
    watttime_recovers("503 unavailable, live", injected(Fault("status", path=LIVE, status=503)), path=LIVE, live=True),
    # ----- InfluxDB
    not_stored(
        "500 beyond the retry budget (two regions, two issues)",
        lambda scene: scene.shim.inject("status", status=500, count=3),
        "HTTP 500",
        "failed after 3 attempt(s)",
        calls=2,
        writes=3,
        regions=TWO_REGIONS,
        intervals=2,
    ),
    not_stored("server down (connection refused)", influxdb_down, "NewConnectionError", clear=influxdb_back),
]


def _dated(cases: list[ForecastFault]) -> list[ForecastFault]:
    """A day of its own for every archived case, so partitions never overlap on the shared instance."""
    return [
        case if case.live else replace(case, first=FIRST_DAY + timedelta(days=index))
        for index, case in enumerate(cases)
    ]


CASES = _dated(_CASES)


def interval_under_way() -> datetime:
    """The issue interval under way, with at least ``LIVE_MARGIN`` of it left for the run to start in."""
    now = datetime.now(UTC)
    start = floor_interval(now)
    if start + INTERVAL - now < LIVE_MARGIN:
        time.sleep((start + INTERVAL - now).total_seconds() + 1)
        start += INTERVAL
    return start


@pytest.fixture(params=CASES, ids=[case.id for case in CASES])
def scene(
    request: pytest.FixtureRequest,
    shared_simulator: SimulatorServer,
    shared_instance: dg.DagsterInstance,
    influxdb_shim: InfluxDBShim,
    influxdb_server: InfluxDBServer,
    influxdb_database: str,
) -> Iterator[Scene]:
    case: ForecastFault = request.param
    shared_simulator.state.clear_faults()
    shared_simulator.state.reset_stats()
    with ExitStack() as stack:
        instance = stack.enter_context(dg.instance_for_test()) if case.live else shared_instance
        first = interval_under_way() if case.live else case.first
        assert first is not None, "archived cases are dated"
        yield Scene(case, first, shared_simulator, influxdb_shim, influxdb_server, influxdb_database, instance)


# ##### CHECKS


def _observed(scene: Scene, result: dg.ExecuteInProcessResult) -> Outcome:
    if result.success:
        return "recovered"
    return "isolated" if scene.materialized() else "failed"


def _report(scene: Scene, result: dg.ExecuteInProcessResult, outcome: Outcome) -> str:
    """Record the row before any assertion, so the table shows failing cases too; returns the message."""
    if result.success:
        message = f"absorbed: {scene.simulator.state.stats()['requests'][scene.case.path]} WattTime call(s)"
        cause = message
    else:
        message = failure_message(result)
        failing = scene.case.failing_regions or scene.case.regions
        cause = message.rsplit(f"{scene.window(failing[-1]).describe()}: ", 1)[-1]
    headline = without_boilerplate(cause)
    record_fault(FaultRow(f"forecast: {scene.case.fault}", scene.case.layer, outcome, headline))
    return message


def _assert_failure_names_everything(scene: Scene, result: dg.ExecuteInProcessResult, message: str) -> None:
    """(a): each failing region with its issue interval, the cause, and what the sensors will read."""
    case = scene.case
    for region in case.failing_regions:
        assert scene.window(region).describe() in message, message
    for text in case.shown:
        assert text in message, message
    assert case.kind is not None
    each = {"kind": case.kind.value, RETRYABLE: case.retryable}
    assert declared_failure(result) == {
        FAILURE_KIND: case.kind.value,
        RETRYABLE: case.retryable,
        FAILED_REGIONS: dict.fromkeys(case.failing_regions, each),
    }
    if case.kind == FailureKind.DATA_REJECTED:
        assert "nothing written" in message and not check_evaluation(result, VALID_FORECAST_CHECK).passed


def _assert_stored_after_fault(scene: Scene) -> None:
    """(b): not a line of a failing region; exactly the truth of every other one."""
    for region in scene.case.failing_regions:
        assert scene.series(region) == [], region
    for region in scene.written_regions():
        assert scene.stored(region) == scene.truth(region), region
    written = scene.partition_keys(scene.written_regions())
    assert scene.materialized() == scene.materialized(WINDOW_ASSET_NAME) == written


def _assert_recovers_after_clearing(scene: Scene) -> None:
    """(c): the same issue intervals, run again once the fault is gone, end exactly as the truth."""
    scene.case.clear(scene)
    result = scene.materialize()
    assert result.success, failure_message(result)
    for region in scene.case.regions:
        assert scene.stored(region) == scene.truth(region), region
    assert scene.materialized() == scene.materialized(WINDOW_ASSET_NAME) == scene.partition_keys()


# ##### THE MATRIX


def test_forecast_fault(scene: Scene) -> None:
    case = scene.case
    case.arrange(scene)
    started = time.monotonic()
    result = scene.materialize()
    seconds = time.monotonic() - started
    outcome = _observed(scene, result)
    message = _report(scene, result, outcome)

    assert outcome == case.outcome, message
    assert scene.simulator.state.stats()["requests"][case.path] == case.calls
    assert len(scene.shim.requests) == case.writes, scene.shim.requests
    assert seconds >= case.min_seconds
    if not result.success:
        _assert_failure_names_everything(scene, result, message)
    _assert_stored_after_fault(scene)

    _assert_recovers_after_clearing(scene)
