"""The carbon-intensity asset: WattTime MOER for each region and 15-minute interval, in InfluxDB."""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import dagster as dg
import pandas as pd
import pyarrow as pa

from carbon_pipeline.assets.interval_figures import interval_figures
from carbon_pipeline.assets.run_events import failed_check, interval_materializations
from carbon_pipeline.assets.schemas import POINT_SCHEMA
from carbon_pipeline.assets.side_by_side import map_regions
from carbon_pipeline.dagster_private import materializations_in_batches
from carbon_pipeline.partitions import RegionWindow, region_windows
from carbon_pipeline.run_outcomes import FailureKind, RegionFailure, pipeline_failure
from carbon_pipeline.sinks.base import PointSink, SinkWriteError, WriteReport
from carbon_pipeline.sinks.line_protocol import MEASUREMENT, LineProtocolError, carbon_intensity_lines
from carbon_pipeline.validation import (
    MAX_MOER_LBS_PER_MWH,
    DataIncomplete,
    DataRejected,
    data_period,
    moer_frame,
    require_complete,
    validate_moer_frame,
)
from carbon_pipeline.watttime.client import WattTimeClient
from carbon_pipeline.watttime.errors import WattTimeError
from carbon_pipeline.watttime.resource import WattTimeSource

ASSET_NAME = "carbon_intensity"
GROUP_NAME = "grid_carbon"
VALID_DATA_CHECK = "watttime_data_valid"
WATTTIME_POOL = "watttime_api"
PREVIEW_ROWS = 12
# WattTime's 10 requests/s are the real limit (the client's limiter enforces it); a few regions in
# flight at once is enough to reach it at WattTime's usual latency.


@dataclass(frozen=True)
class _Fetched:
    window: RegionWindow
    frame: pd.DataFrame
    calls: int


@dataclass(frozen=True)
class _Ready:
    """One region's windows, fetched, validated and serialized: ready to be written with the others."""

    region: str
    fetched: tuple[_Fetched, ...]
    frame: pd.DataFrame
    lines: list[str]

    @property
    def windows(self) -> list[RegionWindow]:
        return [item.window for item in self.fetched]


@dataclass(frozen=True)
class Failed:
    """A region that cannot be written; ``rejected`` holds the validation failures, if that was why."""

    failure: RegionFailure
    rejected: DataRejected | None = None


def interval_asset(
    name: str,
    partitions_def: dg.MultiPartitionsDefinition,
    check_name: str,
    check_description: str,
    metadata: dict[str, Any],
    pool: str = WATTTIME_POOL,
) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """The declaration of an asset of data per region (or zone) and interval, validated by one blocking check.

    A backfill is one run, calls to the source share its ``pool`` (``watttime_api`` for WattTime), and each
    interval is materialized by an event of its own (``AssetMaterialization``), not by an output.
    """
    return dg.asset(
        name=name,
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        check_specs=[dg.AssetCheckSpec(check_name, asset=name, blocking=True, description=check_description)],
        group_name=GROUP_NAME,
        kinds={"python", "influxdb"},
        pool=pool,
        metadata=metadata,
        output_required=False,
    )


def build_carbon_intensity_asset(partitions_def: dg.MultiPartitionsDefinition) -> dg.AssetsDefinition:
    """Build the asset for the configured regions; partitions depend on deployment settings."""

    @interval_asset(
        ASSET_NAME,
        partitions_def,
        VALID_DATA_CHECK,
        "pandera MoerFrame checks on every fetched point before anything is written: non-null, "
        f"finite, 0 <= MOER <= {MAX_MOER_LBS_PER_MWH:g} lbs/MWh, one point per region and "
        "timestamp, inside the requested window, units lbs_co2_per_mwh. Failures list value, "
        "timestamp and rule.",
        {"dagster/column_schema": POINT_SCHEMA, "influxdb_measurement": MEASUREMENT},
    )
    def carbon_intensity(
        context: dg.AssetExecutionContext, watttime: WattTimeSource, point_sink: PointSink
    ) -> Iterator[dg.DagsterEvent | dg.AssetCheckResult]:
        """Grid carbon intensity (WattTime co2_moer) per region and 15-minute UTC interval, stored in InfluxDB.

        Home automations read it to run flexible loads when the grid is cleanest. An interval is only
        materialized once all of its points are published and every point passed validation; a
        range (backfill) is fetched in chunks of at most 30 days and validated whole before any
        write. The regions of a run (the schedule runs every region at once) are fetched side by
        side and stand or fall on their own: the regions whose data is complete and valid are
        written together and materialized, then the run fails naming each region that was not.
        An InfluxDB failure fails them all and may leave lines it had already accepted; the
        intervals stay unmaterialized and the gap-filling sensor's re-run rewrites them idempotently.

        Each materialized interval carries its own figures (points, min / mean / max gCO2/kWh,
        WattTime model date) and is recorded in time order, so the newest is the latest
        materialization; the run's totals are on the check result.
        """
        started = perf_counter()
        prepared = _prepare_regions(watttime, region_windows(context.partition_keys))
        ready = [item for item in prepared if isinstance(item, _Ready)]
        failed = [item for item in prepared if isinstance(item, Failed)]
        rejections = [item.rejected for item in failed if item.rejected is not None]
        if rejections:
            yield failed_check(VALID_DATA_CHECK, rejections)
        if ready:
            report = _write(point_sink, ready, failed)
            frame = pd.concat([region.frame for region in ready], ignore_index=True)
            summary = _summary(frame, ready, report, perf_counter() - started, watttime.data_source_label())
            written = {region.region for region in ready}
            # The points are stored: let them (and their lines) go before the figures are worked out
            # and Dagster holds one event per interval until the step ends.
            del prepared, ready
            figures = interval_figures(frame)
            del frame
            _release_freed_columns()
            materializations = interval_materializations(
                context.asset_key, _partition_keys(context), written, figures, summary
            )
            yield from materializations_in_batches(context, materializations)
            if not rejections:
                yield _passed_check(summary)
            if not failed:
                return
        raise pipeline_failure([item.failure for item in failed])

    return carbon_intensity


def _prepare_regions(watttime: WattTimeSource, windows: Sequence[RegionWindow]) -> list[_Ready | Failed]:
    """Every region of the run, a few at a time through the run's one client.

    A tick of a hundred regions is a hundred WattTime round trips; side by side they take seconds
    instead of minutes, and the client's rate limiter, shared by the threads, keeps the pace within
    WattTime's limit.
    """
    by_region: dict[str, list[RegionWindow]] = {}
    for window in windows:
        by_region.setdefault(window.region, []).append(window)
    client = watttime.get_client()
    return map_regions(lambda region: _prepare_region(client, watttime, region), by_region.values(), "watttime")


def _prepare_region(
    client: WattTimeClient, watttime: WattTimeSource, windows: Sequence[RegionWindow]
) -> _Ready | Failed:
    """Fetch, validate and serialize one region's windows; the first problem fails the region, not the run."""
    fetched = []
    for window in windows:
        try:
            fetched.append(_fetch_valid(client, window))
        except (WattTimeError, DataIncomplete, DataRejected) as error:
            return failed_region(window, error)
    frame = pd.concat([item.frame for item in fetched], ignore_index=True)
    try:
        lines = carbon_intensity_lines(frame, signal_type=watttime.signal_type, source=watttime.source_name)
    except LineProtocolError as error:
        message = f"{_described(windows)}: cannot be stored safely: {error}"
        return Failed(RegionFailure((windows[0].region,), FailureKind.DATA_REJECTED, message, retryable=False))
    return _Ready(windows[0].region, tuple(fetched), frame, lines)


def _fetch_valid(client: WattTimeClient, window: RegionWindow) -> _Fetched:
    chunks = client.historical(window.region, window.start, window.end)
    frame = validate_moer_frame(window, moer_frame(window, chunks))
    require_complete(window, frame, data_period(window, chunks))
    return _Fetched(window, frame, len(chunks))


def failed_region(window: RegionWindow, error: WattTimeError | DataIncomplete | DataRejected) -> Failed:
    """Unpublished data heals by itself, rejected data never does, and WattTime's errors say which they are."""
    regions = (window.region,)
    if isinstance(error, WattTimeError):
        message = f"{window.describe()}: {error}"
        return Failed(RegionFailure(regions, FailureKind.WATTTIME, message, retryable=error.retryable))
    if isinstance(error, DataIncomplete):
        return Failed(RegionFailure(regions, FailureKind.DATA_INCOMPLETE, str(error), retryable=True))
    return Failed(RegionFailure(regions, FailureKind.DATA_REJECTED, str(error), retryable=False), rejected=error)


def _described(windows: Sequence[RegionWindow]) -> str:
    return "; ".join(window.describe() for window in windows)


def _write(sink: PointSink, ready: Sequence[_Ready], failed: Sequence[Failed]) -> WriteReport:
    """One write for every region that is ready; if it fails, none of them is stored for sure."""
    try:
        return sink.write_lines([line for region in ready for line in region.lines])
    except SinkWriteError as error:
        windows = [window for region in ready for window in region.windows]
        written = RegionFailure(
            tuple(region.region for region in ready),
            FailureKind.INFLUXDB_WRITE,
            f"{_described(windows)}: {error}",
            retryable=error.retryable,
        )
        raise pipeline_failure([*(item.failure for item in failed), written]) from None


def _partition_keys(context: dg.AssetExecutionContext) -> list[dg.MultiPartitionKey]:
    """The run's keys, worked out anew (as Dagster does on every access) rather than held through the
    fetch: a year's 35,040 keys take about 25 MB, and the events keep them from here on anyway."""
    return [key for key in context.partition_keys if isinstance(key, dg.MultiPartitionKey)]


def _release_freed_columns() -> None:
    """Hand the memory of the freed frames back to the system before the run's events pile up.

    pandas keeps text columns in Arrow buffers, whose allocator holds on to freed memory for reuse
    by Arrow; the events that follow are Python objects and cannot reuse it. About 15 MB of a
    year's peak.
    """
    pa.default_memory_pool().release_unused()


def _passed_check(summary: dict[str, Any]) -> dg.AssetCheckResult:
    """The run's whole summary rides on its one check result, whatever the number of intervals."""
    return dg.AssetCheckResult(check_name=VALID_DATA_CHECK, passed=True, metadata=summary)


def _summary(
    frame: pd.DataFrame, ready: Sequence[_Ready], report: WriteReport, seconds: float, source_label: str
) -> dict[str, Any]:
    """What the run fetched, checked and wrote (``frame``: its points), for the UI: counts, timings, values' range."""
    fetched = [item for region in ready for item in region.fetched]
    metadata: dict[str, Any] = {
        "data_source": source_label,
        "regions": ", ".join(region.region for region in ready),
        "points_checked": len(frame),
        "points_written": report.lines,
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
