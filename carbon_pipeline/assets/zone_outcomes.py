"""How an Electricity Maps asset's zones stand or fall: a failure per zone window, and one write for the rest.

Both Electricity Maps assets (measured hours and forecast issues) report a zone they could not store the same
way, so the sensors read one kind of failure whichever asset it came from.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

from carbon_pipeline.assets.carbon_intensity import Failed
from carbon_pipeline.electricitymaps.errors import ElectricityMapsError
from carbon_pipeline.partitions import RegionWindow
from carbon_pipeline.run_outcomes import FailureKind, RegionFailure, pipeline_failure
from carbon_pipeline.sinks.base import PointSink, SinkWriteError, WriteReport
from carbon_pipeline.validation import DataIncomplete, DataRejected

_Ready = TypeVar("_Ready")


def parted(
    outcomes: Iterable[Iterable[_Ready | Failed]], ready: type[_Ready]
) -> tuple[list[_Ready], list[Failed], list[DataRejected]]:
    """Every zone's outcomes as what is ready to write, what failed, and what validation refused of the latter."""
    items = [item for outcome in outcomes for item in outcome]
    failed = [item for item in items if isinstance(item, Failed)]
    rejected = [item.rejected for item in failed if item.rejected is not None]
    return [item for item in items if isinstance(item, ready)], failed, rejected


def zone_failed(window: RegionWindow, error: ElectricityMapsError | DataIncomplete | DataRejected) -> Failed:
    """Rejected data never heals; a missing point or a transient Electricity Maps failure may."""
    zones = (window.region,)
    if isinstance(error, DataRejected):
        return Failed(RegionFailure(zones, FailureKind.DATA_REJECTED, str(error), retryable=False), rejected=error)
    if isinstance(error, DataIncomplete):
        return Failed(RegionFailure(zones, FailureKind.DATA_INCOMPLETE, str(error), retryable=True))
    message = f"{window.describe()}: {error}; nothing written"
    return Failed(RegionFailure(zones, FailureKind.OTHER, message, retryable=error.retryable))


def write_zones(
    sink: PointSink, lines: list[str], failed: Sequence[Failed], windows: Sequence[RegionWindow]
) -> WriteReport:
    """One write for every valid window; if it fails, none is materialized and the run says why."""
    try:
        return sink.write_lines(lines)
    except SinkWriteError as error:
        described = "; ".join(window.describe() for window in windows)
        zones = tuple(sorted({window.region for window in windows}))
        written = RegionFailure(zones, FailureKind.INFLUXDB_WRITE, f"{described}: {error}", error.retryable)
        raise pipeline_failure([*(item.failure for item in failed), written]) from None
