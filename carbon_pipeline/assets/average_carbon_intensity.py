"""The average-carbon-intensity asset: Electricity Maps' gCO2eq/kWh per zone and hourly interval, in InfluxDB.

Average intensity is what each kWh consumed in a zone emitted (the footprint of what was used); WattTime's
MOER in ``carbon_intensity`` is what one more kWh would emit now (the effect of shifting a load). They are
different quantities and are stored apart: measurement ``average_carbon_intensity`` (``sinks/average_lines``).

Intervals are hours: the free tier, and the simulator's, serves hourly points, and a finer partition would
hold intervals without a point of their own. A run fetches each zone's range in the fewest calls (one
``/history`` call for the last 24 hours, ``/past-range`` for what is older) and never asks for what the
plan cannot serve: those intervals fail as "not available from this source" without a request.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import pandas as pd

from carbon_pipeline.assets.carbon_intensity import Failed, interval_asset
from carbon_pipeline.assets.run_events import failed_check, partition_tags
from carbon_pipeline.assets.side_by_side import map_regions
from carbon_pipeline.assets.zone_outcomes import parted, write_zones, zone_failed
from carbon_pipeline.average_validation import validate_average
from carbon_pipeline.dagster_private import materializations_in_batches
from carbon_pipeline.electricitymaps.client import ElectricityMapsClient
from carbon_pipeline.electricitymaps.endpoints import HISTORY_SPAN
from carbon_pipeline.electricitymaps.errors import ElectricityMapsError
from carbon_pipeline.electricitymaps.replies import MAX_INTENSITY, IntensityPoint
from carbon_pipeline.electricitymaps.resource import ElectricityMapsSource
from carbon_pipeline.partitions import HOUR, RegionWindow, region_partition_key, region_windows
from carbon_pipeline.run_outcomes import FailureKind, RegionFailure, pipeline_failure
from carbon_pipeline.settings_electricitymaps import FREE_TIER_HOURS, HISTORY_HOURS_VARIABLE
from carbon_pipeline.sinks.average_lines import (
    AVERAGE_FIELD,
    AVERAGE_MEASUREMENT,
    average_intensity_lines,
    average_signal_type,
)
from carbon_pipeline.sinks.base import PointSink, WriteReport
from carbon_pipeline.validation import DataIncomplete, DataRejected

ASSET_NAME = "average_carbon_intensity"
VALID_DATA_CHECK = "electricitymaps_data_valid"
ELECTRICITYMAPS_POOL = "electricitymaps_api"
ZONE = "zone"


@dataclass(frozen=True)
class _Stored:
    """One zone window's validated points, ready to be written with the others."""

    window: RegionWindow
    frame: pd.DataFrame


def served_from(now: datetime, history_hours: int) -> datetime:
    """The start of the oldest interval the plan serves: the hours that started within the last ``history_hours``."""
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - (history_hours - 1) * HOUR


def not_available(history_hours: int) -> str:
    """Why an interval older than the plan's depth is not fetched, for run failures and the gap filler's log."""
    plan = (
        f"Electricity Maps free tier serves the last {FREE_TIER_HOURS} h"
        if history_hours == FREE_TIER_HOURS
        else f"the Electricity Maps plan serves the last {history_hours} h, {HISTORY_HOURS_VARIABLE}"
    )
    return f"not available from this source ({plan})"


def build_average_intensity_asset(
    partitions_def: dg.MultiPartitionsDefinition, history_hours: int
) -> dg.AssetsDefinition:
    """The asset over zone x hour partitions, for a plan serving the last ``history_hours`` hours."""

    @interval_asset(
        ASSET_NAME,
        partitions_def,
        VALID_DATA_CHECK,
        "pandera AverageFrame checks on every fetched point before anything is written: one point per zone "
        f"and hour, non-null, finite, 0 < gCO2eq/kWh < {MAX_INTENSITY:g}, at the start of its interval, of "
        "the zone asked for. Failures list value, time and rule.",
        {"influxdb_measurement": AVERAGE_MEASUREMENT, "unit": "gCO2eq/kWh (average, Electricity Maps)"},
        pool=ELECTRICITYMAPS_POOL,
    )
    def average_carbon_intensity(
        context: dg.AssetExecutionContext, electricitymaps: ElectricityMapsSource, point_sink: PointSink
    ) -> Iterator[dg.DagsterEvent | dg.AssetCheckResult]:
        """Average grid carbon intensity (Electricity Maps, gCO2eq/kWh) per zone and hour, stored in InfluxDB.

        The footprint of what was consumed, not the marginal effect of a load (``carbon_intensity``). Zones
        stand or fall on their own: every window whose points are all valid is written in one request and
        materialized hour by hour, then the run fails naming each zone and interval that was not (older than
        the plan serves, refused by Electricity Maps, incomplete or rejected by validation).
        """
        windows = region_windows(context.partition_keys, HOUR, ZONE)
        client = electricitymaps.get_client()
        by_zone: dict[str, list[RegionWindow]] = {}
        for window in windows:
            by_zone.setdefault(window.region, []).append(window)
        outcomes = map_regions(
            lambda zone_windows: _prepare_zone(client, zone_windows, history_hours), by_zone.values(), "emaps"
        )
        stored, failed, rejections = parted(outcomes, _Stored)
        if rejections:
            yield failed_check(VALID_DATA_CHECK, rejections)
        if stored:
            frame = pd.concat([item.frame for item in stored], ignore_index=True)
            lines = average_intensity_lines(
                frame, emission_factor_type=electricitymaps.emission_factor_type, source=electricitymaps.source_name
            )
            report = write_zones(point_sink, lines, failed, [item.window for item in stored])
            source = electricitymaps.data_source_label()
            yield from materializations_in_batches(context, _materializations(context.asset_key, frame, source))
            if not rejections:
                summary = _summary(frame, report, electricitymaps)
                yield dg.AssetCheckResult(check_name=VALID_DATA_CHECK, passed=True, metadata=summary)
        if failed:
            raise pipeline_failure([item.failure for item in failed])

    return average_carbon_intensity


def _prepare_zone(
    client: ElectricityMapsClient, windows: Sequence[RegionWindow], history_hours: int
) -> list[_Stored | Failed]:
    """Each window of one zone: what the plan cannot serve fails unasked, the rest is fetched and validated."""
    first_served = served_from(datetime.now(UTC), history_hours)
    history_from = served_from(datetime.now(UTC), int(HISTORY_SPAN / HOUR))
    history: list[IntensityPoint] | None = None
    outcomes: list[_Stored | Failed] = []
    for window in windows:
        if window.start < first_served:
            old = replace(window, end=min(window.end, first_served))
            message = f"{old.describe()}: {not_available(history_hours)}; nothing written"
            outcomes.append(Failed(RegionFailure((window.region,), FailureKind.OTHER, message, retryable=False)))
            if window.end <= first_served:
                continue
            window = replace(window, start=first_served)
        try:
            points: list[IntensityPoint] = []
            if window.start < history_from:
                points += client.past_range(window.region, window.start, min(window.end, history_from))
            if window.end > history_from:
                history = client.history(window.region) if history is None else history
                points += [point for point in history if max(window.start, history_from) <= point.time < window.end]
            outcomes.append(_Stored(window, validate_average(window, points)))
        except (ElectricityMapsError, DataIncomplete, DataRejected) as error:
            outcomes.append(zone_failed(window, error))
    return outcomes


def _materializations(asset_key: dg.AssetKey, frame: pd.DataFrame, source: str) -> Iterator[dg.AssetMaterialization]:
    """One per stored hour, oldest first, with its own point, so the UI plots the zone partition by partition."""
    for row in frame.sort_values(["point_time", "zone"]).itertuples(index=False):
        key = region_partition_key(row.zone, row.point_time.to_pydatetime())
        metadata: dict[str, Any] = {
            "data_source": source,
            AVERAGE_FIELD: float(getattr(row, AVERAGE_FIELD)),
            "is_estimated": bool(row.is_estimated),
            "estimation_method": row.estimation_method or "none (measured)",
        }
        yield dg.AssetMaterialization(asset_key=asset_key, partition=key, metadata=metadata, tags=partition_tags(key))


def _summary(frame: pd.DataFrame, report: WriteReport, source: ElectricityMapsSource) -> dict[str, Any]:
    """What the run wrote, for the check result."""
    grams = frame[AVERAGE_FIELD]
    return {
        "signal_type": average_signal_type(source.emission_factor_type),
        "zones": ", ".join(sorted(frame["zone"].unique())),
        "intervals": len(frame),
        "estimated_points": int(frame["is_estimated"].sum()),
        "gco2eq_per_kwh_min": round(float(grams.min()), 3),
        "gco2eq_per_kwh_max": round(float(grams.max()), 3),
        "points_written": report.lines,
        "write_requests": report.requests,
        "destination": report.destination,
    }
