"""The forecast asset: the forecast WattTime issued in each region's 15-minute interval, in InfluxDB.

A partition is an *issue* interval. Its data is the first forecast WattTime generated in it (WattTime issues
one every 5 minutes), whether it is fetched live from `/v3/forecast` on the schedule's tick, shortly after the
interval starts, or later from `/v3/forecast/historical` by a backfill: the same partition always stores the
same issue, so re-materializing rewrites identical points instead of adding a second forecast.
"""

import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from time import perf_counter
from typing import Any

import dagster as dg
import pandas as pd

from carbon_pipeline.assets.carbon_intensity import GROUP_NAME, MAX_CONCURRENT_REGIONS, WATTTIME_POOL
from carbon_pipeline.assets.forecast_store import StoredIssues, StoringWriter
from carbon_pipeline.assets.run_events import failed_check, interval_materializations
from carbon_pipeline.dagster_private import materializations_in_batches
from carbon_pipeline.forecast_validation import ForecastNotIssued, IssueWindow, check_forecasts, forecast_frame
from carbon_pipeline.partitions import INTERVAL, REGION_DIMENSION, TIME_DIMENSION, interval_start, region_windows
from carbon_pipeline.run_outcomes import FailureKind, RegionFailure, pipeline_failure
from carbon_pipeline.sinks.base import PointSink
from carbon_pipeline.sinks.forecast_lines import FORECAST_MEASUREMENT, forecast_headline_lines, forecast_lines
from carbon_pipeline.validation import DataRejected
from carbon_pipeline.watttime.client import WattTimeClient
from carbon_pipeline.watttime.errors import WattTimeError
from carbon_pipeline.watttime.forecasts import Forecast
from carbon_pipeline.watttime.resource import WattTimeSource

ASSET_NAME = "carbon_forecast"
VALID_FORECAST_CHECK = "watttime_forecast_valid"
# WattTime serves 24 h of `generated_at` per historical call: a day of issue intervals is fetched, checked and
# written at a time, so a month's backfill never holds more than a day of forecasts.
ISSUES_PER_CALL = 96
ARCHIVE_CALL_SPAN = ISSUES_PER_CALL * INTERVAL
# WattTime issues a forecast every 5 minutes: one generated before this much of the interval has passed is
# the interval's first.
ISSUE_PERIOD = timedelta(minutes=5)

FORECAST_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("time", "timestamp", description="The forecast point's time, UTC, whole seconds."),
        dg.TableColumn("region", "tag", description="WattTime region, e.g. CAISO_NORTH."),
        dg.TableColumn("grid_operator", "tag", description="Grid operator of the region, from a lookup table."),
        dg.TableColumn("signal_type", "tag", description="WattTime signal, co2_moer."),
        dg.TableColumn("source", "tag", description="watttime, or simulator for the local deployment."),
        dg.TableColumn("horizon_minutes", "tag", description="Minutes from the issue's first point: 0 to 4320."),
        dg.TableColumn("moer_lbs_per_mwh", "float", description="Forecast marginal emissions rate, lbs CO2/MWh."),
        dg.TableColumn("carbon_intensity_gco2_kwh", "float", description="The same value in gCO2/kWh."),
        dg.TableColumn("generated_at", "integer", description="When WattTime issued the forecast, Unix seconds."),
        dg.TableColumn("model_date", "string", description="WattTime model version that produced the forecast."),
    ]
)


@dataclass
class _RegionOutcome:
    """What one region's windows came to: WattTime calls made, issues refused, and the failure that stopped it."""

    region: str
    calls: int = 0
    rejected: list[DataRejected] = field(default_factory=list)
    not_issued: list[ForecastNotIssued] = field(default_factory=list)
    stopped_by: RegionFailure | None = None

    def failures(self) -> list[RegionFailure]:
        failures = [self.stopped_by] if self.stopped_by else []
        if self.rejected:
            message = "\n".join(str(item) for item in self.rejected)
            failures.append(RegionFailure((self.region,), FailureKind.DATA_REJECTED, message, retryable=False))
        if self.not_issued:
            message = "\n".join(str(item) for item in self.not_issued)
            failures.append(RegionFailure((self.region,), FailureKind.DATA_INCOMPLETE, message, retryable=True))
        return failures


def build_carbon_forecast_asset(
    partitions_def: dg.MultiPartitionsDefinition, horizon_hours: int
) -> dg.AssetsDefinition:
    """The forecast asset over issue intervals (``partitions_def`` includes the interval under way)."""

    @dg.asset(
        name=ASSET_NAME,
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        check_specs=[
            dg.AssetCheckSpec(
                VALID_FORECAST_CHECK,
                asset=ASSET_NAME,
                blocking=True,
                description=(
                    "pandera ForecastFrame checks on every forecast point before anything is written: non-null, "
                    "finite, in range, units lbs_co2_per_mwh, on the data period's grid, strictly increasing, "
                    f"first point at the issue's period, generated_at inside the issue interval, and all "
                    f"{horizon_hours} h of the horizon present. A refused issue names region, issue time and rule."
                ),
            )
        ],
        group_name=GROUP_NAME,
        kinds={"python", "influxdb"},
        pool=WATTTIME_POOL,
        metadata={
            "dagster/column_schema": FORECAST_SCHEMA,
            "influxdb_measurement": FORECAST_MEASUREMENT,
            "horizon_hours": horizon_hours,
        },
        output_required=False,
    )
    def carbon_forecast(
        context: dg.AssetExecutionContext, watttime: WattTimeSource, point_sink: PointSink
    ) -> Iterator[dg.DagsterEvent | dg.AssetCheckResult]:
        """WattTime's co2_moer forecast per region and 15-minute issue interval, stored with its issue time.

        Each partition holds the first forecast WattTime generated in its interval, every point of the
        horizon, so an automation can plan ahead and the forecast can later be scored against what was
        published. A forecast is checked whole before any of it is written; a refused or not yet issued
        forecast fails only its own interval. Regions are fetched side by side and a backfill a day of
        issues per WattTime call; lines are written in large batches, and an interval is materialized only
        once its lines are stored.
        """
        started = perf_counter()
        windows = [IssueWindow(w.region, w.start, w.end) for w in region_windows(context.partition_keys)]
        writer = StoringWriter(point_sink)
        client = watttime.get_client()
        lines_for = _serializer(watttime)
        by_region: dict[str, list[IssueWindow]] = {}
        for window in windows:
            by_region.setdefault(window.region, []).append(window)
        now = datetime.now(UTC)
        with ThreadPoolExecutor(min(MAX_CONCURRENT_REGIONS, len(by_region)), thread_name_prefix="forecast") as pool:
            outcomes = list(
                pool.map(
                    lambda region: _store_region(client, writer, by_region[region], horizon_hours, now, lines_for),
                    sorted(by_region),
                )
            )
        stored = writer.finish()
        rejections = [item for outcome in outcomes for item in outcome.rejected]
        if rejections:
            yield failed_check(VALID_FORECAST_CHECK, rejections)
        failures = [failure for outcome in outcomes for failure in outcome.failures()] + writer.failures()
        if stored.issues:
            summary = _summary(stored, outcomes, perf_counter() - started, watttime.data_source_label(), horizon_hours)
            yield from materializations_in_batches(context, _materializations(context, stored, summary))
            if not rejections:
                yield dg.AssetCheckResult(check_name=VALID_FORECAST_CHECK, passed=True, metadata=summary)
        if failures:
            raise pipeline_failure(failures)

    return carbon_forecast


def _serializer(watttime: WattTimeSource) -> Callable[[pd.DataFrame], list[str]]:
    """Every line an issue's points make: the forecast itself and the 1 h / 24 h headline values."""
    signal_type, source = watttime.signal_type, watttime.source_name

    def lines_for(frame: pd.DataFrame) -> list[str]:
        return [
            *forecast_lines(frame, signal_type=signal_type, source=source),
            *forecast_headline_lines(frame, signal_type=signal_type, source=source),
        ]

    return lines_for


def _store_region(
    client: WattTimeClient,
    writer: StoringWriter,
    windows: Sequence[IssueWindow],
    horizon_hours: int,
    now: datetime,
    lines_for: Callable[[pd.DataFrame], list[str]],
) -> _RegionOutcome:
    """Fetch, check and hand to the writer one day of a region's issues at a time; a WattTime error stops the region."""
    outcome = _RegionOutcome(windows[0].region)
    for window in windows:
        for piece in window.pieces(ISSUES_PER_CALL):
            if writer.failed:
                return outcome
            issues = IssueWindow(piece.region, piece.start, piece.end)
            try:
                issued = _fetch(client, issues, horizon_hours, now, outcome)
            except WattTimeError as error:
                message = f"{issues.describe()}: {error}"
                outcome.stopped_by = RegionFailure(
                    (outcome.region,), FailureKind.WATTTIME, message, retryable=error.retryable
                )
                return outcome
            if not issued:
                continue
            checked = check_forecasts(outcome.region, forecast_frame(outcome.region, issued), horizon_hours)
            outcome.rejected.extend(checked.rejected)
            if not checked.frame.empty:
                writer.add(outcome.region, checked.frame, lines_for(checked.frame))
    return outcome


def _fetch(
    client: WattTimeClient, window: IssueWindow, horizon_hours: int, now: datetime, outcome: _RegionOutcome
) -> list[tuple[datetime, Forecast]]:
    """The first forecast issued in each interval of ``window``: live while the interval is under way, else archived."""
    if window.interval_count == 1 and window.start <= now < window.end:
        outcome.calls += 1
        live = client.forecast(window.region, horizon_hours)
        if live.generated_at < window.start:
            outcome.not_issued.append(ForecastNotIssued(window, live.generated_at))
            return []
        if live.generated_at < window.start + ISSUE_PERIOD:
            return [(window.start, live)]
        # The tick came late: the interval's first issue is only in the archive now.
    outcome.calls += math.ceil((window.end - window.start) / ARCHIVE_CALL_SPAN)
    archived = client.historical_forecasts(
        window.region, window.start, window.end, horizon_hours=horizon_hours, issue_interval=INTERVAL
    )
    issued = [(_issue_interval(forecast.generated_at), forecast) for forecast in archived]
    found = {start for start, _ in issued}
    for start in window.starts():
        if start not in found:
            outcome.not_issued.append(ForecastNotIssued(IssueWindow(window.region, start, start + INTERVAL), None))
    return [(start, forecast) for start, forecast in issued if window.start <= start < window.end]


def _issue_interval(moment: datetime) -> datetime:
    return moment - (moment - datetime(1970, 1, 1, tzinfo=UTC)) % INTERVAL


def _materializations(
    context: dg.AssetExecutionContext, stored: StoredIssues, summary: dict[str, Any]
) -> Iterator[dg.AssetMaterialization]:
    """One event per stored issue interval, with the forecast's own figures and its issue time."""
    wanted = set(stored.issues)
    keys = [
        key
        for key in context.partition_keys
        if isinstance(key, dg.MultiPartitionKey)
        and (key.keys_by_dimension[REGION_DIMENSION], key.keys_by_dimension[TIME_DIMENSION]) in wanted
    ]
    figures = stored.figures_frame()
    regions = {key.keys_by_dimension[REGION_DIMENSION] for key in keys}
    return interval_materializations(context.asset_key, keys, regions, figures, summary, stored.metadata)


def _summary(
    stored: StoredIssues, outcomes: Sequence[_RegionOutcome], seconds: float, source_label: str, horizon_hours: int
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
