"""The forecast assets: the forecast WattTime issued in each region's 15-minute interval, and its cleanest windows.

A partition is an *issue* interval. Its data is the first forecast WattTime generated in it (WattTime issues
one every 5 minutes), whether it is fetched live from `/v3/forecast` on the schedule's tick, shortly after the
interval starts, or later from `/v3/forecast/historical` by a backfill: the same partition always stores the
same issue, so re-materializing rewrites identical points instead of adding a second forecast.

`carbon_cleanest_window` is derived from each forecast (identity partition mapping) in the same step, from the
frame already in memory: the pipeline's storage is write-only by design, and an automation waiting for the
window should not wait for a second run to start. Both assets are one multi-asset, so lineage shows the
dependency and a run always materializes the windows of exactly the forecasts it stored.
"""

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from time import perf_counter
from typing import Any

import dagster as dg
import pandas as pd

from carbon_pipeline.assets.carbon_intensity import GROUP_NAME, WATTTIME_POOL
from carbon_pipeline.assets.forecast_fetch import RegionOutcome, Serializer, store_region
from carbon_pipeline.assets.forecast_store import StoredIssues, StoringWriter
from carbon_pipeline.assets.run_events import failed_check, interval_materializations, partition_tags
from carbon_pipeline.assets.schemas import FORECAST_SCHEMA, WINDOW_SCHEMA
from carbon_pipeline.assets.side_by_side import map_regions
from carbon_pipeline.assets.window_metadata import window_metadata
from carbon_pipeline.cleanest_windows import cleanest_windows
from carbon_pipeline.dagster_private import materializations_in_batches
from carbon_pipeline.forecast_validation import IssueWindow
from carbon_pipeline.partitions import REGION_DIMENSION, TIME_DIMENSION, interval_start, region_windows
from carbon_pipeline.run_outcomes import pipeline_failure
from carbon_pipeline.sinks.base import PointSink
from carbon_pipeline.sinks.derived_lines import CLEANEST_WINDOW_MEASUREMENT, cleanest_window_lines
from carbon_pipeline.sinks.forecast_lines import FORECAST_MEASUREMENT, forecast_headline_lines, forecast_lines
from carbon_pipeline.watttime.resource import WattTimeSource

ASSET_NAME = "carbon_forecast"
WINDOW_ASSET_NAME = "carbon_cleanest_window"
VALID_FORECAST_CHECK = "watttime_forecast_valid"


def build_forecast_assets(
    partitions_def: dg.MultiPartitionsDefinition, horizon_hours: int, window_hours: Sequence[int]
) -> dg.AssetsDefinition:
    """The forecast and its cleanest windows over issue intervals (``partitions_def`` includes the one under way)."""

    @dg.multi_asset(
        name=ASSET_NAME,
        specs=[_forecast_spec(horizon_hours), _window_spec(window_hours)],
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        check_specs=[_check_spec(horizon_hours)],
        pool=WATTTIME_POOL,
    )
    def carbon_forecast(
        context: dg.AssetExecutionContext, watttime: WattTimeSource, point_sink: PointSink
    ) -> Iterator[dg.DagsterEvent | dg.AssetCheckResult]:
        """Fetch, check and store each region's forecasts side by side, then record every issue stored.

        A forecast is checked whole before any of it is written; a refused or not yet issued forecast fails
        only its own interval. Lines are written in large batches, and an interval (forecast and windows) is
        materialized only once its lines are stored.
        """
        started = perf_counter()
        by_region: dict[str, list[IssueWindow]] = {}
        for window in region_windows(context.partition_keys):
            by_region.setdefault(window.region, []).append(IssueWindow(window.region, window.start, window.end))
        writer = StoringWriter(point_sink)
        client, serialize, now = watttime.get_client(), _serializer(watttime, window_hours), datetime.now(UTC)
        outcomes = map_regions(
            lambda region: store_region(client, writer, by_region[region], horizon_hours, now, serialize),
            sorted(by_region),
            "forecast",
        )
        stored = writer.finish()
        rejections = [item for outcome in outcomes for item in outcome.rejected]
        if rejections:
            yield failed_check(VALID_FORECAST_CHECK, rejections)
        if stored.issues:
            summary = _summary(stored, outcomes, perf_counter() - started, watttime.data_source_label(), horizon_hours)
            yield from materializations_in_batches(context, _materializations(context, stored, summary))
            if not rejections:
                yield dg.AssetCheckResult(
                    asset_key=ASSET_NAME, check_name=VALID_FORECAST_CHECK, passed=True, metadata=summary
                )
        failures = [failure for outcome in outcomes for failure in outcome.failures()] + writer.failures()
        if failures:
            raise pipeline_failure(failures)

    return carbon_forecast


def _forecast_spec(horizon_hours: int) -> dg.AssetSpec:
    return dg.AssetSpec(
        ASSET_NAME,
        description=(
            "WattTime's co2_moer forecast per region and 15-minute issue interval, stored in InfluxDB with its "
            f"issue time: the first forecast WattTime generated in the interval, all {horizon_hours} h of it, so an "
            "automation can plan ahead and the forecast can later be scored against what was published."
        ),
        group_name=GROUP_NAME,
        kinds={"python", "influxdb"},
        skippable=True,
        metadata={
            "dagster/column_schema": FORECAST_SCHEMA,
            "influxdb_measurement": FORECAST_MEASUREMENT,
            "horizon_hours": horizon_hours,
        },
    )


def _window_spec(window_hours: Sequence[int]) -> dg.AssetSpec:
    lengths = ", ".join(f"{hours} h" for hours in window_hours)
    return dg.AssetSpec(
        WINDOW_ASSET_NAME,
        description=(
            f"For every forecast and window length ({lengths}), the cleanest window starting within the forecast "
            "(start, end, mean gCO2/kWh, percent cleaner than running now; ties go to the earliest start) and "
            "where now ranks within the next 24 h (0 = cleanest). One InfluxDB point per length answers an "
            "automation."
        ),
        deps=[dg.AssetDep(ASSET_NAME, partition_mapping=dg.IdentityPartitionMapping())],
        group_name=GROUP_NAME,
        kinds={"python", "influxdb"},
        skippable=True,
        metadata={"dagster/column_schema": WINDOW_SCHEMA, "influxdb_measurement": CLEANEST_WINDOW_MEASUREMENT},
    )


def _check_spec(horizon_hours: int) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        VALID_FORECAST_CHECK,
        asset=ASSET_NAME,
        blocking=True,
        description=(
            "pandera ForecastFrame checks on every forecast point before anything is written: non-null, finite, "
            "in range, units lbs_co2_per_mwh, on the data period's grid, strictly increasing, first point at the "
            f"issue's period, generated_at inside the issue interval, and all {horizon_hours} h of the horizon "
            "present. A refused issue names region, issue time and rule."
        ),
    )


def _serializer(watttime: WattTimeSource, window_hours: Sequence[int]) -> Serializer:
    """Every line an issue frame makes (the forecast, its headline values, its windows) and the windows' metadata."""
    signal_type, source = watttime.signal_type, watttime.source_name

    def serialize(frame: pd.DataFrame) -> tuple[list[str], dict[str, dict[str, Any]]]:
        windows = cleanest_windows(frame, window_hours)
        lines = [
            *forecast_lines(frame, signal_type=signal_type, source=source),
            *forecast_headline_lines(frame, signal_type=signal_type, source=source),
            *cleanest_window_lines(windows, signal_type=signal_type, source=source),
        ]
        return lines, window_metadata(windows)

    return serialize


def _materializations(
    context: dg.AssetExecutionContext, stored: StoredIssues, summary: dict[str, Any]
) -> Iterator[dg.AssetMaterialization]:
    """One event per stored issue interval and asset: the forecast's own figures, then the windows'."""
    wanted = set(stored.issues)
    keys = [
        key
        for key in context.partition_keys
        if isinstance(key, dg.MultiPartitionKey)
        and (key.keys_by_dimension[REGION_DIMENSION], key.keys_by_dimension[TIME_DIMENSION]) in wanted
    ]
    regions = {key.keys_by_dimension[REGION_DIMENSION] for key in keys}
    forecast_key, window_key = dg.AssetKey(ASSET_NAME), dg.AssetKey(WINDOW_ASSET_NAME)
    yield from interval_materializations(forecast_key, keys, regions, stored.figures_frame(), summary, stored.metadata)
    for key in sorted(keys, key=lambda key: (key.keys_by_dimension[TIME_DIMENSION], str(key))):
        yield dg.AssetMaterialization(
            asset_key=window_key, partition=key, metadata=stored.window_metadata[str(key)], tags=partition_tags(key)
        )


def _summary(
    stored: StoredIssues, outcomes: Sequence[RegionOutcome], seconds: float, source_label: str, horizon_hours: int
) -> dict[str, Any]:
    """What the run fetched and wrote, for the check result (and a single interval's materialization)."""
    return {
        "data_source": source_label,
        "regions": ", ".join(sorted({region for region, _ in stored.issues})),
        "issues_written": len(stored.issues),
        "points_written": stored.points,
        "lines_written": stored.report_lines,
        "horizon_hours": horizon_hours,
        "watttime_forecast_calls": sum(outcome.calls for outcome in outcomes),
        "write_requests": stored.report_requests,
        "destination": stored.destination,
        "data_path_seconds": round(seconds, 3),
        "first_issue": dg.MetadataValue.timestamp(interval_start(min(key for _, key in stored.issues))),
        "last_issue": dg.MetadataValue.timestamp(interval_start(max(key for _, key in stored.issues))),
    }
