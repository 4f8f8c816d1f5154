"""The average-carbon forecast asset: Electricity Maps' forecast per zone and hourly issue, and its cleanest windows.

A partition is an *issue* hour: the forecast Electricity Maps served while the hour was under way. Its
`/carbon-intensity/forecast` keeps no archive, so only the hour under way can be fetched (like the WattTime
forecast's live path); an hour that is over fails as "not available from this source" without a request.

The windows are found on the forecast in memory (``cleanest_windows`` on an hourly grid) and written to
``carbon_cleanest_window`` beside WattTime's, told apart by ``signal_type`` (``average_lifecycle`` or
``average_direct``, never ``co2_moer``) and ``source``: a window of average intensity answers "when is the
electricity I use cleanest", one of marginal MOER "when does my load cause the least emissions". The
forecast itself goes to ``average_carbon_forecast`` (``sinks/average_lines``).
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import pandas as pd

from carbon_pipeline.assets.average_carbon_intensity import ELECTRICITYMAPS_POOL, ZONE
from carbon_pipeline.assets.carbon_intensity import Failed, interval_asset
from carbon_pipeline.assets.run_events import failed_check, partition_tags
from carbon_pipeline.assets.side_by_side import map_regions
from carbon_pipeline.assets.window_metadata import window_metadata
from carbon_pipeline.assets.zone_outcomes import parted, write_zones, zone_failed
from carbon_pipeline.average_validation import validate_average_forecast
from carbon_pipeline.cleanest_windows import cleanest_windows
from carbon_pipeline.dagster_private import materializations_in_batches
from carbon_pipeline.electricitymaps.client import ElectricityMapsClient
from carbon_pipeline.electricitymaps.errors import ElectricityMapsError
from carbon_pipeline.electricitymaps.resource import ElectricityMapsSource
from carbon_pipeline.partitions import HOUR, RegionWindow, region_partition_key, region_windows
from carbon_pipeline.run_outcomes import FailureKind, RegionFailure, pipeline_failure
from carbon_pipeline.sinks.average_lines import (
    AVERAGE_FORECAST_MEASUREMENT,
    average_forecast_lines,
    average_signal_type,
)
from carbon_pipeline.sinks.base import PointSink
from carbon_pipeline.sinks.derived_lines import CLEANEST_WINDOW_MEASUREMENT, cleanest_window_lines
from carbon_pipeline.validation import DataRejected

ASSET_NAME = "average_carbon_forecast"
VALID_FORECAST_CHECK = "electricitymaps_forecast_valid"
NOT_AVAILABLE = (
    "not available from this source (Electricity Maps serves the forecast of the hour under way only; "
    "its /carbon-intensity/forecast keeps no past issues)"
)


@dataclass(frozen=True)
class _Issue:
    """One zone's validated forecast of the hour under way, with its windows and every line they make."""

    window: RegionWindow
    frame: pd.DataFrame
    lines: list[str]
    metadata: dict[str, Any]


def build_average_forecast_asset(
    partitions_def: dg.MultiPartitionsDefinition, horizon_hours: int, window_hours: Sequence[int]
) -> dg.AssetsDefinition:
    """The asset over zone x issue-hour partitions (``partitions_def`` includes the hour under way)."""
    lengths = ", ".join(f"{hours} h" for hours in window_hours)

    @interval_asset(
        ASSET_NAME,
        partitions_def,
        VALID_FORECAST_CHECK,
        "Every forecast point checked before anything is written: non-null, finite, 0 to 2000 gCO2eq/kWh, "
        "consecutive hours of the zone asked for, first point within an hour of the issue, and all "
        f"{horizon_hours} h present. A refused issue names zone, issue hour and rule.",
        {
            "influxdb_measurement": AVERAGE_FORECAST_MEASUREMENT,
            "window_measurement": CLEANEST_WINDOW_MEASUREMENT,
            "horizon_hours": horizon_hours,
            "window_hours": lengths,
            "unit": "gCO2eq/kWh (average, Electricity Maps)",
        },
        pool=ELECTRICITYMAPS_POOL,
    )
    def average_carbon_forecast(
        context: dg.AssetExecutionContext, electricitymaps: ElectricityMapsSource, point_sink: PointSink
    ) -> Iterator[dg.DagsterEvent | dg.AssetCheckResult]:
        """Electricity Maps' average-intensity forecast per zone, and its cleanest windows, stored in InfluxDB.

        Zones stand or fall on their own: every zone whose forecast is valid is written (forecast and
        windows) in one request and materialized, then the run fails naming each zone and issue hour that
        was not (over, refused by Electricity Maps or by validation).
        """
        client, under_way = electricitymaps.get_client(), datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        outcomes = map_regions(
            lambda window: _prepare(client, window, under_way, electricitymaps, horizon_hours, window_hours),
            region_windows(context.partition_keys, HOUR, ZONE),
            "emforecast",
        )
        issues, failed, rejections = parted(outcomes, _Issue)
        if rejections:
            yield failed_check(VALID_FORECAST_CHECK, rejections)
        if issues:
            lines = [line for issue in issues for line in issue.lines]
            report = write_zones(point_sink, lines, failed, [issue.window for issue in issues])
            source = electricitymaps.data_source_label()
            yield from materializations_in_batches(context, _materializations(context.asset_key, issues, source))
            if not rejections:
                summary: dict[str, Any] = {
                    "data_source": source,
                    "zones": ", ".join(sorted(issue.window.region for issue in issues)),
                    "points_written": report.lines,
                    "write_requests": report.requests,
                    "destination": report.destination,
                }
                yield dg.AssetCheckResult(check_name=VALID_FORECAST_CHECK, passed=True, metadata=summary)
        if failed:
            raise pipeline_failure([item.failure for item in failed])

    return average_carbon_forecast


def _prepare(
    client: ElectricityMapsClient,
    window: RegionWindow,
    under_way: datetime,
    source: ElectricityMapsSource,
    horizon_hours: int,
    window_hours: Sequence[int],
) -> list[_Issue | Failed]:
    """One zone's hours: the one under way fetched, checked and serialized; the others fail without a request."""
    outcomes: list[_Issue | Failed] = [
        Failed(RegionFailure((window.region,), FailureKind.NOT_AVAILABLE, f"{old.describe()}: {NOT_AVAILABLE}", False))
        for old in _apart_from(window, under_way)
    ]
    if not window.start <= under_way < window.end:
        return outcomes
    issue = replace(window, start=under_way, end=under_way + HOUR)
    try:
        frame = validate_average_forecast(issue, client.forecast(issue.region, horizon_hours), horizon_hours)
    except (ElectricityMapsError, DataRejected) as error:
        return [*outcomes, zone_failed(issue, error)]
    windows = cleanest_windows(frame, window_hours, HOUR)
    factor, name = source.emission_factor_type, source.source_name
    lines = [
        *average_forecast_lines(frame, emission_factor_type=factor, source=name),
        *cleanest_window_lines(windows, signal_type=average_signal_type(factor), source=name),
    ]
    (metadata,) = window_metadata(windows).values()
    return [*outcomes, _Issue(issue, frame, lines, metadata)]


def _apart_from(window: RegionWindow, under_way: datetime) -> list[RegionWindow]:
    """The parts of ``window`` before and after the hour under way: issues that cannot be fetched now."""
    parts = [
        replace(window, end=min(window.end, under_way)),
        replace(window, start=max(window.start, under_way + HOUR)),
    ]
    return [part for part in parts if part.start < part.end]


def _materializations(
    asset_key: dg.AssetKey, issues: Sequence[_Issue], source: str
) -> Iterator[dg.AssetMaterialization]:
    """One per stored issue, with its windows (Plots draw them over issue time) and when it was computed."""
    for issue in sorted(issues, key=lambda issue: issue.window.region):
        key = region_partition_key(issue.window.region, issue.window.start)
        metadata = {
            "data_source": source,
            "points": len(issue.frame),
            "generated_at": dg.MetadataValue.timestamp(issue.frame["generated_at"].iloc[0].to_pydatetime()),
            "first_point": dg.MetadataValue.timestamp(issue.frame["point_time"].iloc[0].to_pydatetime()),
            **issue.metadata,
        }
        yield dg.AssetMaterialization(asset_key=asset_key, partition=key, metadata=metadata, tags=partition_tags(key))
