"""Fault matrix: each way WattTime or InfluxDB can misbehave, injected into one materialization.

Every case runs the real asset on a shared Dagster instance against the shared WattTime simulator and
a fresh InfluxDB database behind a fresh shim, and checks:

(a) the outcome: the retry policy absorbed the fault and the data is exact, or the run failed with a
    message naming the problem, the region and the interval, after exactly the expected calls;
(b) what reached InfluxDB: nothing for a rejected or failed run, for a partial write exactly the
    lines InfluxDB accepted, and for a fault that hit one region of several exactly the other
    regions' points; never a point that differs from the simulator's truth;
(c) recovery: once the fault clears, re-materializing the same interval leaves exactly the
    simulator's truth in InfluxDB and the interval materialized.

Each case gets its own day, so partitions never overlap on the shared instance, and short retry
budgets and timeouts keep the whole matrix well under two minutes. Outcomes and messages are
collected into the table that ``fault_report`` prints at the end of the session.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import dagster as dg
import pytest
import urllib3

from carbon_pipeline.partitions import RegionWindow, region_partition_key
from carbon_pipeline.sinks.influxdb import InfluxDBResource
from carbon_pipeline.watttime.simulator import Fault, SimulatorServer
from carbon_pipeline_tests.support.fault_report import FaultRow, record_fault, without_boilerplate
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer, InfluxQLError
from carbon_pipeline_tests.support.influxdb_shim import FaultKind, InfluxDBShim
from carbon_pipeline_tests.support.pipeline_harness import (
    ASSET,
    StoredPoint,
    check_evaluation,
    failure_message,
    metadata_by_partition,
    stored_points,
    truth,
    watttime_resource,
)

Layer = Literal["WattTime", "InfluxDB"]
Outcome = Literal["recovered", "accepted", "failed", "partial", "isolated"]
Arrange = Callable[["Scene"], None]

HISTORICAL = "/v3/historical"
# A zero-delay "slow" fault changes nothing about the reply it is applied to: a harmless HTTP-level fault.
PASS_THROUGH = Fault(kind="slow", path=HISTORICAL, delay_seconds=0)
QUARTER = timedelta(minutes=15)
FIRST_DAY = datetime(2025, 2, 3, tzinfo=UTC)
# InfluxDB 1.x groups shards by week from Monday 00:00 UTC: a run spanning this boundary writes into
# two shards, and a field type conflict in only one of them is a real partial write.
SHARD_BOUNDARY = datetime(2025, 6, 2, tzinfo=UTC)
WATTTIME_OPTIONS: Mapping[str, object] = {"max_attempts": 3, "max_retry_seconds": 3.0, "timeout_seconds": 2.0}
INFLUXDB_OPTIONS: Mapping[str, Any] = {
    "token": "test-token",
    "max_attempts": 3,
    "max_retry_seconds": 3.0,
    "backoff_max_seconds": 0.2,
    "write_timeout_seconds": 2.0,
}
SHORT_TIMEOUT_SECONDS = 0.3
SLOW_SECONDS = 1.0
RETRY_AFTER_SECONDS = 1
# Ten times the longest backoff INFLUXDB_OPTIONS allow and within their budget: only a client that
# honours the header leaves this long between the refused write and its retry.
INFLUXDB_RETRY_AFTER_SECONDS = 2.0
# One line of this schema is about 200 bytes, so no write of a whole interval (3 lines) fits.
SMALL_BODY_LIMIT = 256
# Adjacent in the partitions' region order: a range from one to the other covers exactly these two.
TWO_REGIONS = ("CAISO_NORTH", "PJM_DC")


# ##### THE SCENE A CASE RUNS IN


@dataclass
class Scene:
    """One case's world: shared simulator and instance, its own shim, database and intervals."""

    case: FaultCase
    first: datetime
    simulator: SimulatorServer
    shim: InfluxDBShim
    server: InfluxDBServer
    database: str
    instance: dg.DagsterInstance

    @property
    def end(self) -> datetime:
        return self.first + self.case.intervals * QUARTER

    def windows(self) -> list[RegionWindow]:
        return [RegionWindow(region, self.first, self.end) for region in self.case.regions]

    def failing_regions(self) -> tuple[str, ...]:
        """The regions a failure message must name: all of them, except after an isolated fault.

        Regions are fetched side by side, so which region's reply an isolated fault hits is a matter
        of timing: it is the region that was left without points.
        """
        if self.case.outcome != "isolated":
            return self.case.regions
        return tuple(region for region in self.case.regions if not self.stored((region,)))

    def written_regions(self) -> tuple[str, ...]:
        """The regions a failed run still wrote and materialized."""
        failing = self.failing_regions()
        return tuple(region for region in self.case.regions if region not in failing)

    def failing_windows(self) -> list[RegionWindow]:
        failing = self.failing_regions()
        return [window for window in self.windows() if window.region in failing]

    def partition_keys(self, regions: Sequence[str] | None = None) -> set[str]:
        starts = [self.first + index * QUARTER for index in range(self.case.intervals)]
        chosen = self.case.regions if regions is None else regions
        return {str(region_partition_key(region, start)) for region in chosen for start in starts}

    def materialize(self, *, faulty: bool) -> dg.ExecuteInProcessResult:
        """One run over the case's regions and intervals, as a single-run backfill launches it.

        The faulty run uses the case's resource overrides (a wrong token, a short timeout...); the run
        after the fault cleared uses the plain configuration.
        """
        watttime = {**WATTTIME_OPTIONS, **(self.case.watttime if faulty else {})}
        influxdb = {**INFLUXDB_OPTIONS, **(self.case.influxdb if faulty else {})}
        resources = {
            "watttime": watttime_resource(self.simulator.base_url, **watttime),
            "point_sink": InfluxDBResource(host=self.shim.url, database=self.database, **influxdb),
        }
        last = self.end - QUARTER
        tags = {
            "dagster/asset_partition_range_start": str(region_partition_key(self.case.regions[0], self.first)),
            "dagster/asset_partition_range_end": str(region_partition_key(self.case.regions[-1], last)),
        }
        return dg.materialize([ASSET], resources=resources, tags=tags, instance=self.instance, raise_on_error=False)

    def stored(self, regions: Sequence[str] | None = None) -> list[StoredPoint]:
        """Points of the case's regions (or of ``regions``); none at all while its database does not exist."""
        chosen = self.case.regions if regions is None else regions
        try:
            return [point for region in chosen for point in stored_points(self.server, self.database, region)]
        except InfluxQLError as error:
            if "database not found" not in str(error):
                raise
            return []

    def truth(self, regions: Sequence[str] | None = None) -> list[StoredPoint]:
        chosen = self.case.regions if regions is None else regions
        return [point for region in chosen for point in truth(region, self.first, self.end)]

    def materialized(self) -> set[str]:
        return set(self.instance.get_materialized_partitions(ASSET.key)) & self.partition_keys()

    def model_dates(self, region: str) -> set[str]:
        rows = self.server.query(f"SELECT model_date FROM carbon_intensity WHERE region = '{region}'", self.database)
        return {row["model_date"] for row in rows}


# ##### CASES


def clear_queued_faults(scene: Scene) -> None:
    """Most faults clear by themselves once used up; dropping leftovers keeps the next run clean."""
    scene.simulator.state.clear_faults()
    scene.shim.reset()


@dataclass(frozen=True)
class FaultCase:
    """One row of the matrix: how to provoke the fault, what the run must do, how the fault clears.

    ``outcome`` is ``recovered`` (the retry policy absorbed the fault), ``accepted`` (the reply is
    valid as sent, so the run succeeds), ``failed`` (nothing written), ``partial`` (the run failed
    after InfluxDB stored some of its lines) or ``isolated`` (the fault hit one region of the run:
    the run failed naming it, and the other regions were written and materialized). ``calls``,
    ``logins`` and ``writes`` are the WattTime data calls, logins and InfluxDB write requests the
    faulty run must make: they pin the retry policy (a permanent error is never repeated, a
    transient one exactly as often as needed). ``survivors`` picks, from the truth, the points
    InfluxDB keeps after a partial write.
    """

    fault: str
    layer: Layer
    outcome: Outcome
    arrange: Arrange
    shown: tuple[str, ...] = ()
    calls: int = 1
    logins: int = 1
    writes: int = 1
    clear: Arrange = clear_queued_faults
    regions: tuple[str, ...] = ("CAISO_NORTH",)
    intervals: int = 1
    first: datetime | None = None
    watttime: Mapping[str, object] = field(default_factory=dict)
    influxdb: Mapping[str, object] = field(default_factory=dict)
    survivors: Callable[[list[StoredPoint]], list[StoredPoint]] | None = None
    rejected: bool = False
    min_seconds: float = 0.0
    verify: Callable[[Scene, dg.ExecuteInProcessResult], None] | None = None

    @property
    def id(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", f"{self.layer} {self.fault}".lower()).strip("-")


def queued(*faults: Fault) -> Arrange:
    """Queue simulator faults in order: each one applies to the next request it matches."""

    def arrange(scene: Scene) -> None:
        for fault in faults:
            scene.simulator.state.inject(fault)

    return arrange


def simulator_fault(kind: str, **options: Any) -> Arrange:
    """A fault on /v3/historical, the only data endpoint the asset calls."""
    return queued(Fault(kind=kind, path=HISTORICAL, **options))


def on_second_data_call(kind: str, **options: Any) -> Arrange:
    """A fault on the second data call of a run, i.e. between two calls, after the first one succeeded.

    Faults are taken in order per level (HTTP or data), so a harmless one of the same level goes
    first: ``PASS_THROUGH``, or another model date, which leaves a reply valid.
    """
    fault = Fault(kind=kind, path=HISTORICAL, **options)
    harmless = Fault(kind="model_date", path=HISTORICAL) if fault.data_level else PASS_THROUGH
    return queued(harmless, fault)


def shim_fault(kind: FaultKind, **options: Any) -> Arrange:
    return lambda scene: scene.shim.inject(kind, **options)


def nothing(scene: Scene) -> None:
    """For faults that come from the resource configuration alone (a wrong token)."""


def influxdb_down(scene: Scene) -> None:
    scene.shim.refuse_connections()


def influxdb_back(scene: Scene) -> None:
    scene.shim.accept_connections()
    scene.shim.reset()


def database_dropped(scene: Scene) -> None:
    scene.server.drop_database(scene.database)


def database_created(scene: Scene) -> None:
    scene.server.create_database(scene.database)


def small_body_limit(scene: Scene) -> None:
    scene.shim.limit_request_size(SMALL_BODY_LIMIT)


def body_limit_lifted(scene: Scene) -> None:
    scene.shim.limit_request_size(None)


def integer_moer_in_shard(after_first: timedelta) -> Arrange:
    """Write, straight to InfluxDB 1.x, a point whose MOER field is an integer, ``after_first`` from the
    case's first interval; an offset within the same day lands in the same weekly shard.

    A field's type is fixed per measurement and shard, so the pipeline's float field then conflicts
    for real, as after an older writer stored integers. The point is in another series (region tag)
    so read-backs of the case's regions stay clean.
    """

    def arrange(scene: Scene) -> None:
        moment = scene.first + after_first
        line = f"carbon_intensity,region=LEGACY_WRITER moer_lbs_per_mwh=812i {int(moment.timestamp())}"
        url = f"{scene.server.url}/write?db={scene.database}&precision=s"
        response = urllib3.request("POST", url, body=line.encode())
        assert response.status == 204, response.data

    return arrange


def measurement_dropped(scene: Scene) -> None:
    """InfluxDB 1.x keeps a field's type per shard until the measurement goes; deleting the point is not enough."""
    scene.server.query("DROP MEASUREMENT carbon_intensity", scene.database)


def without_line(number: int) -> Callable[[list[StoredPoint]], list[StoredPoint]]:
    return lambda points: points[: number - 1] + points[number:]


def from_shard_boundary(points: list[StoredPoint]) -> list[StoredPoint]:
    return [point for point in points if point.time >= SHARD_BOUNDARY.timestamp()]


def each_point_keeps_its_model_date(scene: Scene, result: dg.ExecuteInProcessResult) -> None:
    """One region's reply came from another model: its points and its interval say so, the other region's do not.

    The run's summary, on its check result, names both.
    """
    assert check_evaluation(result).metadata["watttime_model_date"].value == "2023-03-01, 2024-06-01"
    dates = {frozenset(scene.model_dates(region)) for region in TWO_REGIONS}
    assert dates == {frozenset({"2024-06-01"}), frozenset({"2023-03-01"})}
    for partition, metadata in metadata_by_partition(result).items():
        (stored,) = scene.model_dates(partition.split("|")[0])
        assert metadata["watttime_model_date"] == stored, partition


def retry_came_after_retry_after(scene: Scene, result: dg.ExecuteInProcessResult) -> None:
    """The gap the shim saw between the refused write and its retry; ignoring the header, the backoff
    would have sent the retry within ``backoff_max_seconds`` (0.2 s) of the refusal."""
    refused, retried = scene.shim.requests
    gap = retried.received_at - refused.received_at
    assert gap >= INFLUXDB_RETRY_AFTER_SECONDS, f"the retry came {gap:.2f} s after the 503"


def the_repeat_is_logged(scene: Scene, result: dg.ExecuteInProcessResult) -> None:
    """The run's log names the region, the interval, the repeated point's time and how many copies came."""
    (window,) = scene.windows()
    repeated = (window.start + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")  # the middle of three points
    expected = (
        f"{window.describe()}: WattTime sent 1 point(s) more than once with the same value; kept one of each: "
        f"{repeated} (2 copies)"
    )
    logs = scene.instance.all_logs(result.run_id)
    warnings = [entry.user_message for entry in logs if entry.level == logging.WARNING]
    assert expected in warnings, warnings


def watttime_recovers(fault: str, arrange: Arrange, *, calls: int = 2, **options: Any) -> FaultCase:
    return FaultCase(fault, "WattTime", "recovered", arrange, calls=calls, **options)


def watttime_fails(fault: str, arrange: Arrange, *shown: str, calls: int = 1, **options: Any) -> FaultCase:
    return FaultCase(fault, "WattTime", "failed", arrange, shown, calls=calls, writes=0, **options)


def data_rejected(fault: str, kind: str, *shown: str) -> FaultCase:
    """Bad content in a 200 reply: the blocking check fails and not a single point is written."""
    return FaultCase(
        fault, "WattTime", "failed", simulator_fault(kind), ("nothing written", *shown), writes=0, rejected=True
    )


def data_incomplete(fault: str, kind: str, *shown: str) -> FaultCase:
    return FaultCase(fault, "WattTime", "failed", simulator_fault(kind), ("nothing written", *shown), writes=0)


def influxdb_recovers(fault: str, arrange: Arrange, *, writes: int = 2, **options: Any) -> FaultCase:
    return FaultCase(fault, "InfluxDB", "recovered", arrange, writes=writes, **options)


def influxdb_fails(fault: str, arrange: Arrange, clear: Arrange, *shown: str, **options: Any) -> FaultCase:
    return FaultCase(fault, "InfluxDB", "failed", arrange, shown, clear=clear, **options)


_CASES = [
    # ----- WattTime: authentication and plan
    watttime_recovers(
        "401 mid-run: token invalidated between calls, one re-login",
        on_second_data_call("unauthorized"),
        calls=3,
        logins=2,
        regions=TWO_REGIONS,
    ),
    watttime_fails(
        "401 again after re-login",
        simulator_fault("unauthorized", count=2),
        "rejected a freshly issued token",
        calls=2,
        logins=2,
    ),
    watttime_fails("403 plan (Invalid scope)", simulator_fault("invalid_scope"), "plan does not cover region"),
    watttime_fails("404 unknown region", simulator_fault("status", status=404), "HTTP 404"),
    watttime_fails("422 unprocessable query", simulator_fault("status", status=422), "HTTP 422"),
    # ----- WattTime: transient replies the retry policy absorbs
    watttime_recovers(
        "429 with Retry-After",
        simulator_fault("status", status=429, retry_after=RETRY_AFTER_SECONDS),
        min_seconds=RETRY_AFTER_SECONDS,
    ),
    watttime_recovers("429 without Retry-After", simulator_fault("status", status=429)),
    watttime_recovers("500 internal error", simulator_fault("status", status=500)),
    watttime_recovers("502 bad gateway", simulator_fault("status", status=502)),
    watttime_recovers("503 unavailable", simulator_fault("status", status=503)),
    watttime_recovers("504 gateway timeout", simulator_fault("status", status=504)),
    watttime_fails(
        "503 beyond the retry budget",
        simulator_fault("status", status=503, count=2),
        "gave up after 2 attempt(s)",
        "HTTP 503",
        calls=2,
        watttime={"max_attempts": 2},
    ),
    watttime_recovers(
        "timeout: reply slower than the client timeout",
        simulator_fault("slow", delay_seconds=SLOW_SECONDS),
        watttime={"timeout_seconds": SHORT_TIMEOUT_SECONDS},
    ),
    watttime_recovers("connection reset", simulator_fault("reset")),
    watttime_recovers("malformed JSON (200)", simulator_fault("malformed_json")),
    watttime_fails(
        "malformed JSON on every attempt",
        simulator_fault("malformed_json", count=2),
        "not valid JSON",
        calls=2,
        watttime={"max_attempts": 2},
    ),
    watttime_recovers("truncated body", simulator_fault("truncated")),
    watttime_fails("HTML page from CloudFront (403)", simulator_fault("html"), "HTTP 403", "Server: CloudFront"),
    # ----- WattTime: a 200 reply with wrong content
    data_incomplete("empty data, long after publication", "empty", "WattTime returned no points", "published long ago"),
    data_rejected("null values", "nulls", "None"),
    data_rejected("out-of-range values", "out_of_range", "99999.0", "-5.0"),
    FaultCase(
        "exact duplicate point (kept once, with a warning)",
        "WattTime",
        "accepted",
        simulator_fault("duplicates"),
        verify=the_repeat_is_logged,
    ),
    data_rejected("duplicate point with another value", "conflicting_duplicates", "multiple_fields_uniqueness"),
    data_rejected("wrong units", "wrong_units", "'percentile'"),
    data_rejected("point outside the window", "outside_window", "in_range"),
    data_rejected("non-numeric value", "non_numeric", "'n/a'"),
    data_incomplete("missing point", "missing_point", "gap in WattTime's data: 2 of 3 points"),
    FaultCase(
        "out-of-range values in one region of a two-region run (the other is written)",
        "WattTime",
        "isolated",
        simulator_fault("out_of_range"),
        ("nothing written", "99999.0"),
        calls=2,
        regions=TWO_REGIONS,
        rejected=True,
    ),
    FaultCase(
        "mixed model dates in one run (two regions)",
        "WattTime",
        "accepted",
        simulator_fault("model_date"),
        calls=2,
        regions=TWO_REGIONS,
        verify=each_point_keeps_its_model_date,
    ),
    # ----- InfluxDB
    influxdb_fails(
        "server down (connection refused)",
        influxdb_down,
        influxdb_back,
        "NewConnectionError",
        "failed after 3 attempt(s)",
        writes=0,
    ),
    influxdb_fails(
        "401 bad token", nothing, clear_queued_faults, "HTTP 401", "not authenticated", influxdb={"token": "wrong"}
    ),
    influxdb_fails("404 database not found", database_dropped, database_created, "HTTP 404", "database not found"),
    influxdb_fails("413 request too large", small_body_limit, body_limit_lifted, "HTTP 413", "max request size"),
    influxdb_recovers("429 too many requests", shim_fault("status", status=429)),
    influxdb_recovers("500 internal error", shim_fault("status", status=500)),
    influxdb_fails(
        "500 beyond the retry budget",
        shim_fault("status", status=500, count=3),
        clear_queued_faults,
        "HTTP 500",
        "failed after 3 attempt(s)",
        writes=3,
    ),
    influxdb_recovers(
        "503 with Retry-After",
        shim_fault("status", status=503, retry_after=int(INFLUXDB_RETRY_AFTER_SECONDS)),
        verify=retry_came_after_retry_after,
    ),
    influxdb_recovers(
        "timeout: write slower than the client timeout",
        shim_fault("delay", delay_seconds=SLOW_SECONDS),
        influxdb={"write_timeout_seconds": SHORT_TIMEOUT_SECONDS},
    ),
    influxdb_recovers("connection reset", shim_fault("reset")),
    influxdb_recovers("reply lost after the write was stored", shim_fault("lost_reply")),
    FaultCase(
        "partial write (InfluxDB 3 body, line 2 rejected)",
        "InfluxDB",
        "partial",
        shim_fault("partial_write", line_number=2),
        ("partial write rejected 1 line(s), the other lines of the request were stored", "line 2"),
        survivors=without_line(2),
    ),
    influxdb_fails(
        "field type conflict (real server)",
        integer_moer_in_shard(timedelta(hours=1)),
        measurement_dropped,
        "HTTP 400",
        "field type conflict",
    ),
    FaultCase(
        "field type conflict in one of two shards (real partial write)",
        "InfluxDB",
        "partial",
        integer_moer_in_shard(-timedelta(hours=12)),
        ("HTTP 400", "field type conflict", "dropped=3"),
        clear=measurement_dropped,
        first=SHARD_BOUNDARY - QUARTER,
        intervals=2,
        survivors=from_shard_boundary,
    ),
]


def _dated(cases: list[FaultCase]) -> list[FaultCase]:
    """A day of its own for every case without a fixed start, so partitions never overlap on the shared instance."""
    return [replace(case, first=case.first or FIRST_DAY + timedelta(days=index)) for index, case in enumerate(cases)]


CASES = _dated(_CASES)


# ##### FIXTURES


@pytest.fixture(params=CASES, ids=[case.id for case in CASES])
def scene(
    request: pytest.FixtureRequest,
    shared_simulator: SimulatorServer,
    shared_instance: dg.DagsterInstance,
    influxdb_shim: InfluxDBShim,
    influxdb_server: InfluxDBServer,
    influxdb_database: str,
) -> Scene:
    case: FaultCase = request.param
    assert case.first is not None, "CASES are dated"
    shared_simulator.state.clear_faults()
    shared_simulator.state.reset_stats()
    return Scene(case, case.first, shared_simulator, influxdb_shim, influxdb_server, influxdb_database, shared_instance)


# ##### CHECKS


def _observed(scene: Scene, result: dg.ExecuteInProcessResult, stored: list[StoredPoint]) -> Outcome:
    if result.success:
        return "accepted" if scene.case.outcome == "accepted" else "recovered"
    if scene.materialized():
        return "isolated"
    return "partial" if stored else "failed"


def _report(scene: Scene, result: dg.ExecuteInProcessResult, outcome: Outcome) -> str:
    """Record the row before any assertion, so the table shows failing cases too; returns the message."""
    stats = scene.simulator.state.stats()
    if result.success:
        message = (
            f"absorbed: {stats['requests'][HISTORICAL]} WattTime data call(s), {stats['logins']} login(s), "
            f"{len(scene.shim.requests)} write request(s)"
        )
    else:
        message = failure_message(result)
    record_fault(FaultRow(scene.case.fault, scene.case.layer, outcome, _headline(scene, message)))
    return message


def _headline(scene: Scene, message: str) -> str:
    """The cause, for the table: what follows the region and interval, minus the request or destination."""
    cause = message.rsplit(scene.failing_windows()[-1].describe() + ": ", 1)[-1]
    return without_boilerplate(cause)


def _assert_calls(scene: Scene) -> None:
    """Pin the retry policy: the WattTime calls, logins and write requests the faulty run made."""
    stats = scene.simulator.state.stats()
    case = scene.case
    assert stats["requests"][HISTORICAL] == case.calls, stats
    assert stats["logins"] == case.logins, stats
    assert len(scene.shim.requests) == case.writes, scene.shim.requests


def _assert_failure_names_everything(scene: Scene, result: dg.ExecuteInProcessResult, message: str) -> None:
    for window in scene.failing_windows():
        assert window.describe() in message, message
    for text in scene.case.shown:
        assert text in message, message
    if scene.case.rejected:
        assert not check_evaluation(result).passed


def _expected_after_fault(scene: Scene) -> list[StoredPoint]:
    """(b): all of the truth after a success, the accepted lines after a partial write, the other regions'
    truth after an isolated fault, else nothing."""
    if scene.case.outcome in ("recovered", "accepted"):
        return scene.truth()
    if scene.case.outcome == "isolated":
        return scene.truth(scene.written_regions())
    survivors = scene.case.survivors
    return survivors(scene.truth()) if survivors is not None else []


def _assert_recovers_after_clearing(scene: Scene) -> None:
    """(c): the same intervals, materialized again once the fault is gone, end exactly as the truth."""
    scene.case.clear(scene)
    result = scene.materialize(faulty=False)
    assert result.success, failure_message(result)
    assert scene.stored() == scene.truth()
    assert scene.materialized() == scene.partition_keys()


# ##### THE MATRIX


def test_fault(scene: Scene) -> None:
    case = scene.case
    case.arrange(scene)
    started = time.monotonic()
    result = scene.materialize(faulty=True)
    seconds = time.monotonic() - started
    stored = scene.stored()
    outcome = _observed(scene, result, stored)
    message = _report(scene, result, outcome)

    assert outcome == case.outcome, message
    _assert_calls(scene)
    assert seconds >= case.min_seconds
    if result.success:
        assert scene.materialized() == scene.partition_keys()
    else:
        _assert_failure_names_everything(scene, result, message)
        assert scene.materialized() == scene.partition_keys(scene.written_regions())
        assert len(scene.written_regions()) == (len(case.regions) - 1 if outcome == "isolated" else 0)
    assert stored == _expected_after_fault(scene)
    if case.verify is not None:
        case.verify(scene, result)

    _assert_recovers_after_clearing(scene)
