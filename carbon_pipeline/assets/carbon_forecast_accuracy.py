"""How right the forecasts were: per region and UTC day, the day's forecasts against what WattTime later published.

A day is judged once every forecast issued in it is stored (`carbon_forecast`) and every point those forecasts
cover has been published and stored (`carbon_intensity`, up to the horizon past the day's end). Dagster's
declarative automation starts the run when that becomes true; a run started earlier fails with what it is
waiting for, and is started again by the automation once the last dependency lands.

The values are read from WattTime, not back from InfluxDB: the pipeline's storage is write-only by design (a
`PointSink`), WattTime's archive holds exactly the issues the forecast asset stored (the first of each
interval), and its history the values as revised since, which is the truth a forecast should be scored by.
"""

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
import pandas as pd

from carbon_pipeline.assets.carbon_forecast import ASSET_NAME as FORECAST_ASSET
from carbon_pipeline.assets.carbon_intensity import ASSET_NAME as MEASUREMENT_ASSET
from carbon_pipeline.assets.carbon_intensity import GROUP_NAME, WATTTIME_POOL
from carbon_pipeline.coverage import materialized_starts
from carbon_pipeline.forecast_accuracy import ActualsMissing, ForecastAccuracy, forecast_accuracy
from carbon_pipeline.forecast_validation import check_forecasts, forecast_frame
from carbon_pipeline.partitions import INTERVAL, REGION_DIMENSION, RegionWindow, format_window, interval_starts
from carbon_pipeline.run_outcomes import FailureKind, RegionFailure, pipeline_failure
from carbon_pipeline.sinks.base import PointSink
from carbon_pipeline.sinks.derived_lines import FORECAST_ACCURACY_MEASUREMENT, forecast_accuracy_lines
from carbon_pipeline.validation import DataIncomplete, DataRejected, data_period, moer_frame, validate_moer_frame
from carbon_pipeline.watttime.errors import WattTimeError
from carbon_pipeline.watttime.resource import WattTimeSource

ACCURACY_ASSET_NAME = "carbon_forecast_accuracy"
DAY_DIMENSION = "day"
TIME_DIMENSION = "time"
DAY = timedelta(days=1)


def days_covered(horizon_hours: int) -> int:
    """Days after a day's end its forecasts reach: its last issue (23:45) looks ``horizon_hours`` ahead."""
    return -(-horizon_hours // 24)


def build_day_partitions(regions: Sequence[str], start: datetime, horizon_hours: int) -> dg.MultiPartitionsDefinition:
    """Region x UTC day; a day exists once its forecasts' whole horizon is in the past, so it can be judged."""
    return dg.MultiPartitionsDefinition(
        {
            REGION_DIMENSION: dg.StaticPartitionsDefinition(list(regions)),
            DAY_DIMENSION: dg.DailyPartitionsDefinition(
                start_date=start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0),
                timezone="UTC",
                end_offset=-days_covered(horizon_hours),
            ),
        }
    )


def _day_mapping(end_offset: int) -> dg.MultiPartitionMapping:
    return dg.MultiPartitionMapping(
        {
            REGION_DIMENSION: dg.DimensionPartitionMapping(REGION_DIMENSION, dg.IdentityPartitionMapping()),
            TIME_DIMENSION: dg.DimensionPartitionMapping(
                DAY_DIMENSION, dg.TimeWindowPartitionMapping(end_offset=end_offset)
            ),
        }
    )


def accuracy_condition(horizon_hours: int) -> dg.AutomationCondition:
    """Judge a day the moment the last thing it depends on is stored, once; days up to a few back, in case a
    dependency lagged (or the condition was just deployed).

    Dagster's ``on_missing`` looks at the latest day only, and counts the days that exist when it is first
    evaluated as handled; a day here waits up to the horizon for its last values, so neither fits. A day whose
    run fails is not retried by the condition (it would be, every minute, while WattTime is down): run retries
    or a backfill from the UI take it.
    """
    # The look-back comes first: each day's dependencies are 96 to 384 intervals, and only a few days need
    # them checked on every evaluation, not every day since the partitions start.
    recent = dg.AutomationCondition.in_latest_time_window(DAY * (days_covered(horizon_hours) + 3))
    ready = recent & dg.AutomationCondition.missing() & ~dg.AutomationCondition.any_deps_missing()
    return (
        ready.newly_true().with_label("everything_stored")
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("day_complete")


def build_forecast_accuracy_asset(
    partitions_def: dg.MultiPartitionsDefinition, horizon_hours: int, window_hours: Sequence[int]
) -> dg.AssetsDefinition:
    ahead = days_covered(horizon_hours)

    @dg.asset(
        name=ACCURACY_ASSET_NAME,
        partitions_def=partitions_def,
        deps=[
            dg.AssetDep(FORECAST_ASSET, partition_mapping=_day_mapping(0)),
            dg.AssetDep(MEASUREMENT_ASSET, partition_mapping=_day_mapping(ahead)),
        ],
        automation_condition=accuracy_condition(horizon_hours),
        group_name=GROUP_NAME,
        kinds={"python", "influxdb"},
        pool=WATTTIME_POOL,
        metadata={"influxdb_measurement": FORECAST_ACCURACY_MEASUREMENT},
    )
    def carbon_forecast_accuracy(
        context: dg.AssetExecutionContext, watttime: WattTimeSource, point_sink: PointSink
    ) -> dg.MaterializeResult:
        """Per region and UTC day: MAE, RMSE and bias of the day's forecasts against the published MOER, by lead
        time (0-1 h, 1-6 h, 6-24 h, 24-72 h), and the share of cleanest windows within 5 % of the true cleanest.

        Numeric metadata per day, so the asset's Plots show accuracy over time; also written to InfluxDB.
        """
        key = context.partition_key
        assert isinstance(key, dg.MultiPartitionKey)
        region = key.keys_by_dimension[REGION_DIMENSION]
        day = date.fromisoformat(key.keys_by_dimension[DAY_DIMENSION])
        _require_stored(context.instance, region, day, ahead)
        try:
            accuracy = _judge(watttime, region, day, horizon_hours, window_hours)
        except (WattTimeError, DataRejected, DataIncomplete, ActualsMissing) as error:
            raise pipeline_failure([_failure(region, day, error)]) from None
        report = point_sink.write_lines(
            forecast_accuracy_lines(accuracy, signal_type=watttime.signal_type, source=watttime.source_name)
        )
        return dg.MaterializeResult(metadata=_metadata(accuracy) | {"destination": report.destination})

    return carbon_forecast_accuracy


def _require_stored(instance: dg.DagsterInstance, region: str, day: date, ahead: int) -> None:
    """Fail, saying what is missing, unless the day's forecasts and every value they cover are stored."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    waiting = [
        _waiting_for(instance, asset, region, start, start + span)
        for asset, span in ((FORECAST_ASSET, DAY), (MEASUREMENT_ASSET, DAY * (1 + ahead)))
    ]
    missing = [text for text in waiting if text]
    if missing:
        message = f"region {region}, day {day.isoformat()}: waiting for {'; '.join(missing)}; nothing written"
        raise pipeline_failure([RegionFailure((region,), FailureKind.DATA_INCOMPLETE, message, retryable=True)])


def _waiting_for(instance: dg.DagsterInstance, asset: str, region: str, first: datetime, end: datetime) -> str:
    stored = materialized_starts(instance, dg.AssetKey(asset), [region], first, end).get(region, set())
    absent = [start for start in interval_starts(first, end) if start not in stored]
    if not absent:
        return ""
    return f"{len(absent)} {asset} interval(s) in {format_window(absent[0], absent[-1] + INTERVAL)}"


def _judge(
    watttime: WattTimeSource, region: str, day: date, horizon_hours: int, window_hours: Sequence[int]
) -> ForecastAccuracy:
    client = watttime.get_client()
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    archived = client.historical_forecasts(
        region, start, start + DAY, horizon_hours=horizon_hours, issue_interval=INTERVAL
    )
    issued = [(forecast.generated_at - (forecast.generated_at - start) % INTERVAL, forecast) for forecast in archived]
    checked = check_forecasts(region, forecast_frame(region, issued), horizon_hours)
    if checked.rejected:
        raise checked.rejected[0]
    span = RegionWindow(region, start, start + DAY + timedelta(hours=horizon_hours))
    chunks = client.historical(region, span.start, span.end)
    data_period(span, chunks)  # refuses a mix of data periods
    actuals = validate_moer_frame(span, moer_frame(span, chunks))
    return forecast_accuracy(checked.frame, actuals, region=region, day=day, window_hours=window_hours)


def _failure(region: str, day: date, error: Exception) -> RegionFailure:
    where = f"region {region}, day {day.isoformat()}"
    if isinstance(error, WattTimeError):
        return RegionFailure((region,), FailureKind.WATTTIME, f"{where}: {error}", retryable=error.retryable)
    if isinstance(error, DataRejected):
        return RegionFailure((region,), FailureKind.DATA_REJECTED, f"{where}: {error}", retryable=False)
    return RegionFailure((region,), FailureKind.DATA_INCOMPLETE, f"{where}: {error}", retryable=True)


def _metadata(accuracy: ForecastAccuracy) -> dict[str, Any]:
    """Numbers per horizon bucket and window length, named so the Plots tab groups them."""
    metadata: dict[str, Any] = {"issues": accuracy.issues}
    for error in accuracy.horizon_errors:
        bucket = error.bucket.replace("-", "_to_")
        metadata |= {
            f"mae_{bucket}_gco2_kwh": error.mae_gco2_kwh,
            f"rmse_{bucket}_gco2_kwh": error.rmse_gco2_kwh,
            f"bias_{bucket}_gco2_kwh": error.bias_gco2_kwh,
            f"points_{bucket}": error.points,
        }
    for share in accuracy.window_hit_shares:
        metadata[f"cleanest_{share.window_hours:g}h_within_5_percent_share"] = share.within_5_percent_share
    metadata["errors"] = dg.MetadataValue.md(_table(accuracy))
    return metadata


def _table(accuracy: ForecastAccuracy) -> str:
    rows = [
        {
            "lead time": error.bucket,
            "points": error.points,
            "MAE": error.mae_gco2_kwh,
            "RMSE": error.rmse_gco2_kwh,
            "bias": error.bias_gco2_kwh,
        }
        for error in accuracy.horizon_errors
    ]
    return pd.DataFrame(rows).to_markdown(index=False)
