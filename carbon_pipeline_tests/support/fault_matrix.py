"""The runner of the measurement fault matrix: the scene a case runs in, the shape of a case, and the checks
every case passes (outcome, calls, message, what reached InfluxDB, recovery once the fault clears).

The cases themselves are the table in ``reliability/test_fault_matrix.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import dagster as dg

from carbon_pipeline.partitions import RegionWindow, region_partition_key
from carbon_pipeline.sinks.influxdb import InfluxDBResource
from carbon_pipeline.watttime.simulator import SimulatorServer
from carbon_pipeline_tests.support.fault_report import FaultRow, record_fault, without_boilerplate
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer, InfluxQLError
from carbon_pipeline_tests.support.influxdb_shim import InfluxDBShim
from carbon_pipeline_tests.support.pipeline_harness import (
    ASSET,
    StoredPoint,
    check_evaluation,
    failure_message,
    stored_points,
    truth,
    watttime_resource,
)

Layer = Literal["WattTime", "InfluxDB"]
Outcome = Literal["recovered", "accepted", "failed", "partial", "isolated"]
Arrange = Callable[["Scene"], None]

HISTORICAL = "/v3/historical"
QUARTER = timedelta(minutes=15)
WATTTIME_OPTIONS: Mapping[str, object] = {"max_attempts": 3, "max_retry_seconds": 3.0, "timeout_seconds": 2.0}
INFLUXDB_OPTIONS: Mapping[str, Any] = {
    "token": "test-token",
    "max_attempts": 3,
    "max_retry_seconds": 3.0,
    "backoff_max_seconds": 0.2,
    "write_timeout_seconds": 2.0,
}


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


def observed(scene: Scene, result: dg.ExecuteInProcessResult, stored: list[StoredPoint]) -> Outcome:
    if result.success:
        return "accepted" if scene.case.outcome == "accepted" else "recovered"
    if scene.materialized():
        return "isolated"
    return "partial" if stored else "failed"


def report(scene: Scene, result: dg.ExecuteInProcessResult, outcome: Outcome) -> str:
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


def assert_calls(scene: Scene) -> None:
    """Pin the retry policy: the WattTime calls, logins and write requests the faulty run made."""
    stats = scene.simulator.state.stats()
    case = scene.case
    assert stats["requests"][HISTORICAL] == case.calls, stats
    assert stats["logins"] == case.logins, stats
    assert len(scene.shim.requests) == case.writes, scene.shim.requests


def assert_failure_names_everything(scene: Scene, result: dg.ExecuteInProcessResult, message: str) -> None:
    for window in scene.failing_windows():
        assert window.describe() in message, message
    for text in scene.case.shown:
        assert text in message, message
    if scene.case.rejected:
        assert not check_evaluation(result).passed


def expected_after_fault(scene: Scene) -> list[StoredPoint]:
    """(b): all of the truth after a success, the accepted lines after a partial write, the other regions'
    truth after an isolated fault, else nothing."""
    if scene.case.outcome in ("recovered", "accepted"):
        return scene.truth()
    if scene.case.outcome == "isolated":
        return scene.truth(scene.written_regions())
    survivors = scene.case.survivors
    return survivors(scene.truth()) if survivors is not None else []


def assert_recovers_after_clearing(scene: Scene) -> None:
    """(c): the same intervals, materialized again once the fault is gone, end exactly as the truth."""
    scene.case.clear(scene)
    result = scene.materialize(faulty=False)
    assert result.success, failure_message(result)
    assert scene.stored() == scene.truth()
    assert scene.materialized() == scene.partition_keys()
