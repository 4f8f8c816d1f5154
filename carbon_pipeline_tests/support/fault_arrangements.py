"""How the fault matrix provokes and clears each fault: simulator faults queued for the next data call, shim
faults, InfluxDB stopped, dropped or given a conflicting field type, and the constructors of common cases.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import urllib3

from carbon_pipeline.watttime.simulator import Fault
from carbon_pipeline_tests.support.fault_matrix import HISTORICAL, Arrange, FaultCase, Scene
from carbon_pipeline_tests.support.influxdb_shim import FaultKind
from carbon_pipeline_tests.support.pipeline_harness import StoredPoint

# A zero-delay "slow" fault changes nothing about the reply it is applied to: a harmless HTTP-level fault.
PASS_THROUGH = Fault(kind="slow", path=HISTORICAL, delay_seconds=0)
# InfluxDB 1.x groups shards by week from Monday 00:00 UTC: a run spanning this boundary writes into
# two shards, and a field type conflict in only one of them is a real partial write.
SHARD_BOUNDARY = datetime(2025, 6, 2, tzinfo=UTC)
# One line of this schema is about 200 bytes, so no write of a whole interval (3 lines) fits.
SMALL_BODY_LIMIT = 256


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
