"""The signal-index asset: WattTime's 0-100 rank of the current period, per region and 15-minute interval.

A free WattTime account reads MOER for CAISO_NORTH only; the signal index is what it gets elsewhere (Home
Assistant's WattTime integration shows nothing else). WattTime serves it for the current 5-minute period
only, so an interval can be stored only while it is under way: its schedule ticks a few minutes into each
interval, and a run for an interval that is over fails saying so without asking WattTime, since no later
call can ever fill it. Points go to a measurement of their own (``carbon_signal_index``), never to MOER's.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import pandas as pd

from carbon_pipeline.assets.carbon_intensity import Failed, failed_region, interval_asset
from carbon_pipeline.assets.run_events import failed_check, partition_tags
from carbon_pipeline.assets.schemas import INDEX_SCHEMA
from carbon_pipeline.assets.side_by_side import map_regions
from carbon_pipeline.index_validation import validate_signal_index
from carbon_pipeline.partitions import RegionWindow, region_partition_key, region_windows
from carbon_pipeline.run_outcomes import FailureKind, RegionFailure, pipeline_failure
from carbon_pipeline.sinks.base import PointSink, SinkWriteError, WriteReport
from carbon_pipeline.sinks.index_lines import SIGNAL_INDEX_MEASUREMENT, index_signal_type, signal_index_lines
from carbon_pipeline.validation import DataRejected
from carbon_pipeline.watttime.client import WattTimeClient
from carbon_pipeline.watttime.errors import WattTimeError
from carbon_pipeline.watttime.resource import WattTimeSource

ASSET_NAME = "carbon_signal_index"
VALID_INDEX_CHECK = "watttime_signal_index_valid"
NOT_AVAILABLE = (
    "not available from this source: WattTime serves the signal index only for the current interval; nothing written"
)


@dataclass(frozen=True)
class _Indexed:
    """One interval's validated index point."""

    window: RegionWindow
    frame: pd.DataFrame


def build_signal_index_asset(partitions_def: dg.MultiPartitionsDefinition, signal_type: str) -> dg.AssetsDefinition:
    """The asset over ``partitions_def`` (the interval under way must exist), asking for ``signal_type``'s index."""

    @interval_asset(
        ASSET_NAME,
        partitions_def,
        VALID_INDEX_CHECK,
        "pandera SignalIndexFrame checks on the reply before anything is written: exactly one point, "
        "non-null, finite, 0 <= value <= 100, units percentile, point_time inside the interval. "
        "Failures list value, timestamp and rule.",
        {"dagster/column_schema": INDEX_SCHEMA, "influxdb_measurement": SIGNAL_INDEX_MEASUREMENT},
    )
    def carbon_signal_index(
        context: dg.AssetExecutionContext, watttime: WattTimeSource, point_sink: PointSink
    ) -> Iterator[dg.AssetMaterialization | dg.AssetCheckResult]:
        """WattTime's signal index (0 cleanest, 100 dirtiest) per region and current 15-minute interval, in InfluxDB.

        The regions of a run are asked side by side and stand or fall on their own, as the MOER asset's do:
        every interval whose point is valid is written in one request and materialized, then the run fails
        naming each one that was not (over, refused by WattTime, or rejected by validation).
        """
        windows = [piece for window in region_windows(context.partition_keys) for piece in window.pieces(1)]
        client = watttime.get_client()
        outcomes = map_regions(lambda window: _index_for(client, window, signal_type), windows, "index")
        indexed = [item for item in outcomes if isinstance(item, _Indexed)]
        failed = [item for item in outcomes if isinstance(item, Failed)]
        rejections = [item.rejected for item in failed if item.rejected is not None]
        if rejections:
            yield failed_check(VALID_INDEX_CHECK, rejections)
        if indexed:
            report = _write(point_sink, indexed, watttime, signal_type, failed)
            source = watttime.data_source_label()
            for item in sorted(indexed, key=lambda item: (item.window.start, item.window.region)):
                yield _materialization(context.asset_key, item, source)
            if not rejections:
                yield dg.AssetCheckResult(
                    check_name=VALID_INDEX_CHECK, passed=True, metadata=_summary(indexed, report, signal_type)
                )
        if failed:
            raise pipeline_failure([item.failure for item in failed])

    return carbon_signal_index


def _index_for(client: WattTimeClient, window: RegionWindow, signal_type: str) -> _Indexed | Failed:
    """The interval's validated point, asked for only while the interval is under way."""
    if not window.start <= datetime.now(UTC) < window.end:
        message = f"{window.describe()}: {NOT_AVAILABLE}"
        return Failed(RegionFailure((window.region,), FailureKind.NOT_AVAILABLE, message, retryable=False))
    try:
        return _Indexed(window, validate_signal_index(window, client.signal_index(window.region, signal_type)))
    except (WattTimeError, DataRejected) as error:
        return failed_region(window, error)


def _write(
    sink: PointSink, indexed: Sequence[_Indexed], watttime: WattTimeSource, signal_type: str, failed: Sequence[Failed]
) -> WriteReport:
    """One write for every valid interval; if it fails, none is materialized and the run says why."""
    frame = pd.concat([item.frame for item in indexed], ignore_index=True)
    try:
        return sink.write_lines(signal_index_lines(frame, signal_type=signal_type, source=watttime.source_name))
    except SinkWriteError as error:
        described = "; ".join(item.window.describe() for item in indexed)
        regions = tuple(sorted({item.window.region for item in indexed}))
        written = RegionFailure(regions, FailureKind.INFLUXDB_WRITE, f"{described}: {error}", error.retryable)
        raise pipeline_failure([*(item.failure for item in failed), written]) from None


def _materialization(asset_key: dg.AssetKey, item: _Indexed, source: str) -> dg.AssetMaterialization:
    """The interval's own point, so the UI plots the index partition by partition."""
    [row] = item.frame.itertuples(index=False)
    key = region_partition_key(item.window.region, item.window.start)
    metadata: dict[str, Any] = {
        "data_source": source,
        "percentile": float(row.percentile),
        "point_time": dg.MetadataValue.timestamp(row.point_time.to_pydatetime()),
        "watttime_model_date": row.model_date or "unknown",
    }
    return dg.AssetMaterialization(asset_key=asset_key, partition=key, metadata=metadata, tags=partition_tags(key))


def _summary(indexed: Sequence[_Indexed], report: WriteReport, signal_type: str) -> dict[str, Any]:
    """What the run wrote, for the check result."""
    return {
        "signal_type": index_signal_type(signal_type),
        "regions": ", ".join(sorted({item.window.region for item in indexed})),
        "intervals": len(indexed),
        "points_written": report.lines,
        "write_requests": report.requests,
        "destination": report.destination,
    }
