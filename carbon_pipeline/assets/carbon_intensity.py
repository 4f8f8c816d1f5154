"""The carbon-intensity asset: WattTime MOER for each region and 15-minute interval, in InfluxDB."""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import dagster as dg
import pandas as pd

from carbon_pipeline.line_protocol import MEASUREMENT, LineProtocolError, carbon_intensity_lines
from carbon_pipeline.partitions import RegionWindow, region_windows
from carbon_pipeline.resources.influxdb import InfluxDBWriteError
from carbon_pipeline.resources.point_sink import PointSink, WriteReport
from carbon_pipeline.resources.watttime import WattTimeResource
from carbon_pipeline.run_outcomes import FailureKind, pipeline_failure
from carbon_pipeline.validation import (
    MAX_MOER_LBS_PER_MWH,
    DataIncomplete,
    DataRejected,
    data_period,
    moer_frame,
    require_complete,
    validate_moer_frame,
)
from carbon_pipeline.watttime_client import WattTimeClient
from carbon_pipeline.watttime_errors import WattTimeError

ASSET_NAME = "carbon_intensity"
GROUP_NAME = "grid_carbon"
VALID_DATA_CHECK = "watttime_data_valid"
WATTTIME_POOL = "watttime_api"
PREVIEW_ROWS = 12

POINT_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("time", "timestamp", description="Start of the WattTime data point, UTC, whole seconds."),
        dg.TableColumn("region", "tag", description="WattTime region, e.g. CAISO_NORTH."),
        dg.TableColumn("grid_operator", "tag", description="Grid operator of the region, from a lookup table."),
        dg.TableColumn("signal_type", "tag", description="WattTime signal, co2_moer."),
        dg.TableColumn("source", "tag", description="watttime, or simulator for the local deployment."),
        dg.TableColumn("moer_lbs_per_mwh", "float", description="Marginal emissions rate as WattTime reports it."),
        dg.TableColumn("carbon_intensity_gco2_kwh", "float", description="The same value in gCO2/kWh (x 0.45359237)."),
        dg.TableColumn("model_date", "string", description="WattTime model version that produced the value."),
        dg.TableColumn("imputed", "boolean", description="WattTime's imputed-data marker, when sent."),
    ]
)


@dataclass(frozen=True)
class _Fetched:
    window: RegionWindow
    frame: pd.DataFrame
    calls: int


def build_carbon_intensity_asset(partitions_def: dg.MultiPartitionsDefinition) -> dg.AssetsDefinition:
    """Build the asset for the configured regions; partitions depend on deployment settings."""

    @dg.asset(
        name=ASSET_NAME,
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        check_specs=[
            dg.AssetCheckSpec(
                VALID_DATA_CHECK,
                asset=ASSET_NAME,
                blocking=True,
                description=(
                    "pandera MoerFrame checks on every fetched point before anything is written: non-null, "
                    f"finite, 0 <= MOER <= {MAX_MOER_LBS_PER_MWH:g} lbs/MWh, one point per region and "
                    "timestamp, inside the requested window, units lbs_co2_per_mwh. Failures list value, "
                    "timestamp and rule."
                ),
            )
        ],
        group_name=GROUP_NAME,
        kinds={"python", "influxdb"},
        pool=WATTTIME_POOL,
        metadata={"dagster/column_schema": POINT_SCHEMA, "influxdb_measurement": MEASUREMENT},
    )
    def carbon_intensity(
        context: dg.AssetExecutionContext, watttime: WattTimeResource, point_sink: PointSink
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        """Grid carbon intensity (WattTime co2_moer) per region and 15-minute UTC interval, stored in InfluxDB.

        Home automations read it to run flexible loads when the grid is cleanest. An interval is only
        materialized once all of its points are published and every point passed validation; a
        range (backfill) is fetched in chunks of at most 30 days and validated whole before any
        write, so a WattTime or validation failure writes nothing. An InfluxDB failure may leave
        lines it had already accepted; the intervals stay unmaterialized and the gap-filling
        sensor's re-run rewrites them idempotently.
        """
        started = perf_counter()
        windows = region_windows(context.partition_keys)
        try:
            fetched = [_fetch_valid(watttime.get_client(), window) for window in windows]
        except DataRejected as rejected:
            yield _failed_check(rejected)
            raise pipeline_failure(FailureKind.DATA_REJECTED, str(rejected), retryable=False) from None
        frame = pd.concat([item.frame for item in fetched], ignore_index=True)
        report = _write(point_sink, windows, _lines(frame, windows, watttime))
        yield dg.MaterializeResult(
            metadata=_metadata(frame, fetched, report, perf_counter() - started, watttime.data_source_label()),
            check_results=[_passed_check(len(frame))],
        )

    return carbon_intensity


def _fetch_valid(client: WattTimeClient, window: RegionWindow) -> _Fetched:
    try:
        chunks = client.historical(window.region, window.start, window.end)
    except WattTimeError as error:
        raise pipeline_failure(
            FailureKind.WATTTIME, f"{window.describe()}: {error}", retryable=error.retryable
        ) from None
    frame = validate_moer_frame(window, moer_frame(window, chunks))
    try:
        require_complete(window, frame, data_period(window, chunks))
    except DataIncomplete as incomplete:
        raise pipeline_failure(FailureKind.DATA_INCOMPLETE, str(incomplete), retryable=True) from None
    return _Fetched(window, frame, len(chunks))


def _lines(frame: pd.DataFrame, windows: Sequence[RegionWindow], watttime: WattTimeResource) -> list[str]:
    """Every line or none: a value that cannot be stored safely rejects the run before any write."""
    try:
        return carbon_intensity_lines(frame, signal_type=watttime.signal_type, source=watttime.source_name)
    except LineProtocolError as error:
        raise pipeline_failure(
            FailureKind.DATA_REJECTED, f"{_described(windows)}: cannot be stored safely: {error}", retryable=False
        ) from None


def _described(windows: Sequence[RegionWindow]) -> str:
    return "; ".join(window.describe() for window in windows)


def _write(sink: PointSink, windows: Sequence[RegionWindow], lines: list[str]) -> WriteReport:
    try:
        return sink.write_lines(lines)
    except InfluxDBWriteError as error:
        raise pipeline_failure(
            FailureKind.INFLUXDB_WRITE, f"{_described(windows)}: {error}", retryable=error.retryable
        ) from None


def _failed_check(rejected: DataRejected) -> dg.AssetCheckResult:
    cases = rejected.failure_cases
    return dg.AssetCheckResult(
        check_name=VALID_DATA_CHECK,
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        description=str(rejected),
        metadata={
            "region": rejected.window.region,
            "interval": rejected.window.describe(),
            "num_failures": len(cases),
            "failure_cases": dg.MetadataValue.md(cases.head(50).to_markdown(index=False, disable_numparse=True)),
        },
    )


def _passed_check(points: int) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(check_name=VALID_DATA_CHECK, passed=True, metadata={"points_checked": points})


def _metadata(
    frame: pd.DataFrame, fetched: Sequence[_Fetched], report: WriteReport, seconds: float, source_label: str
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "data_source": source_label,
        "points_written": report.lines,
        "dagster/row_count": report.lines,
        "intervals": sum(item.window.interval_count for item in fetched),
        "watttime_data_calls": sum(item.calls for item in fetched),
        "write_requests": report.requests,
        "destination": report.destination,
        "data_path_seconds": round(seconds, 3),
        "watttime_model_date": ", ".join(sorted({str(model) for model in frame["model_date"].dropna()})) or "unknown",
    }
    if not frame.empty:
        grams = frame["carbon_intensity_gco2_kwh"]
        metadata |= {
            "gco2_kwh_min": round(float(grams.min()), 3),
            "gco2_kwh_mean": round(float(grams.mean()), 3),
            "gco2_kwh_max": round(float(grams.max()), 3),
            "first_point_time": dg.MetadataValue.timestamp(frame["point_time"].min().to_pydatetime()),
            "last_point_time": dg.MetadataValue.timestamp(frame["point_time"].max().to_pydatetime()),
            "preview": dg.MetadataValue.md(_preview(frame)),
        }
    return metadata


def _preview(frame: pd.DataFrame) -> str:
    columns = ["region", "point_time", "moer_lbs_per_mwh", "carbon_intensity_gco2_kwh", "model_date", "imputed"]
    return frame[columns].head(PREVIEW_ROWS).to_markdown(index=False, floatfmt=".3f")
