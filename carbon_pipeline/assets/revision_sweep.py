"""The revision sweep: WattTime's revised MOER values, written over the points carbon_intensity stored.

WattTime may revise a published value at any time. Every sweep asks, per region, for the points of the
trailing ``CARBON_REVISION_DAYS`` updated since that region's previous sweep, validates them as
carbon_intensity validates what it fetches, and rewrites the stored points whose value changed.
"""

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pandas as pd

from carbon_pipeline.access_gate import requestable
from carbon_pipeline.assets.carbon_intensity import GROUP_NAME, VALID_DATA_CHECK, WATTTIME_POOL
from carbon_pipeline.assets.run_events import failed_check
from carbon_pipeline.assets.schemas import POINT_SCHEMA
from carbon_pipeline.assets.side_by_side import map_regions
from carbon_pipeline.partitions import RegionWindow
from carbon_pipeline.run_outcomes import FailureKind, RegionFailure, pipeline_failure
from carbon_pipeline.sinks.base import PointSink, SinkWriteError
from carbon_pipeline.sinks.line_protocol import (
    LBS_PER_MWH_TO_G_PER_KWH,
    MEASUREMENT,
    LineProtocolError,
    carbon_intensity_lines,
)
from carbon_pipeline.validation import DataRejected, moer_frame, validate_moer_frame
from carbon_pipeline.watttime.access import HISTORICAL
from carbon_pipeline.watttime.client import WattTimeClient
from carbon_pipeline.watttime.errors import WattTimeError
from carbon_pipeline.watttime.replies import HistoricalChunk
from carbon_pipeline.watttime.resource import WattTimeSource

ASSET_NAME = "carbon_intensity_revisions"
SWEPT_AT = "swept_at"
# Asked again on every sweep, so a revision WattTime dated a little before our clock's sweep time is not missed;
# the points it brings back twice are unchanged by then and skipped.
CLOCK_OVERLAP = timedelta(minutes=10)
CHANGE_DECIMALS = 4


@dataclass(frozen=True)
class _Sweep:
    """What one sweep of one region asks: the trailing window, and the time from which updates count."""

    window: RegionWindow
    updated_since: datetime


@dataclass(frozen=True)
class _Revised:
    """One region's sweep, validated and compared with what is stored: the changed points, ready to write."""

    region: str
    checked: int
    frame: pd.DataFrame
    changes: pd.Series


@dataclass(frozen=True)
class _Refused:
    failure: RegionFailure
    rejected: DataRejected | None = None


def build_revision_sweep_asset(regions: Sequence[str], revision_days: int) -> dg.AssetsDefinition:
    """The sweep of the configured regions over the trailing ``revision_days``."""

    @dg.asset(
        name=ASSET_NAME,
        check_specs=[
            dg.AssetCheckSpec(
                VALID_DATA_CHECK,
                asset=ASSET_NAME,
                description="The carbon_intensity checks (pandera MoerFrame) on every revised point before any write.",
            )
        ],
        group_name=GROUP_NAME,
        kinds={"python", "influxdb"},
        pool=WATTTIME_POOL,
        metadata={"dagster/column_schema": POINT_SCHEMA, "influxdb_measurement": MEASUREMENT},
    )
    def carbon_intensity_revisions(
        context: dg.AssetExecutionContext, watttime: WattTimeSource, point_sink: PointSink
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        """WattTime's revisions of the last CARBON_REVISION_DAYS, written over the stored carbon_intensity points.

        Per region: the points WattTime published or revised since the region's previous successful sweep
        (``swept_at`` in this asset's latest materialization; the whole window on the first), validated whole
        with carbon_intensity's checks, then compared with the stored points. Only points whose MOER changed
        are rewritten (same series and timestamp, so they replace the stored point) with ``last_updated``;
        unchanged points and points not stored yet (carbon_intensity's to write) are left alone. A region whose
        revisions fail validation writes nothing and keeps its ``swept_at``, so the next sweep asks again.
        Regions the latest ``watttime_access`` read does not allow ``v3/historical`` are not asked (each is a
        line of the run's log), as the schedule does not ask them.

        Every sweep is a materialization, with zeros when nothing changed: its numeric metadata (points
        revised, per region, and the max and mean change in gCO2/kWh) plots sweep by sweep in the UI.
        """
        asked_at = datetime.now(UTC).replace(microsecond=0)
        previous = _previous_sweeps(context)
        allowed, notes = requestable(context.instance, HISTORICAL, regions)
        for note in notes:
            context.log.info(note)
        sweeps = [_sweep_of(region, asked_at, revision_days, previous.get(region)) for region in allowed]
        outcomes = _sweep_regions(watttime, point_sink, sweeps)
        rejections = [item.rejected for item in outcomes.values() if isinstance(item, _Refused) and item.rejected]
        yield (
            failed_check(VALID_DATA_CHECK, rejections)
            if rejections
            else dg.AssetCheckResult(check_name=VALID_DATA_CHECK, passed=True)
        )
        yield dg.MaterializeResult(metadata=_summary(outcomes, asked_at, previous))
        failures = [item.failure for item in outcomes.values() if isinstance(item, _Refused)]
        if failures:
            raise pipeline_failure(failures)

    return carbon_intensity_revisions


def _previous_sweeps(context: dg.AssetExecutionContext) -> dict[str, datetime]:
    """Each region's last successful sweep, from this asset's latest materialization."""
    event = context.instance.get_latest_materialization_event(context.asset_key)
    materialization = event.asset_materialization if event is not None else None
    if materialization is None:
        return {}
    prefix = f"{SWEPT_AT}/"
    return {
        key.removeprefix(prefix): datetime.fromtimestamp(float(value.value), UTC)
        for key, value in materialization.metadata.items()
        if key.startswith(prefix)
    }


def _sweep_of(region: str, asked_at: datetime, revision_days: int, previous: datetime | None) -> _Sweep:
    window = RegionWindow(region, asked_at - timedelta(days=revision_days), asked_at)
    since = window.start if previous is None else max(window.start, previous - CLOCK_OVERLAP)
    return _Sweep(window, since)


def _sweep_regions(
    watttime: WattTimeSource, sink: PointSink, sweeps: Sequence[_Sweep]
) -> dict[str, _Revised | _Refused]:
    """Every region, a few at a time through the run's one client, as carbon_intensity fetches them."""
    client = watttime.get_client()
    swept = map_regions(lambda sweep: _sweep_region(client, watttime, sink, sweep), sweeps, "watttime")
    return {sweep.window.region: outcome for sweep, outcome in zip(sweeps, swept, strict=True)}


def _sweep_region(
    client: WattTimeClient, watttime: WattTimeSource, sink: PointSink, sweep: _Sweep
) -> _Revised | _Refused:
    """Fetch, validate, compare and write one region's revisions; any problem refuses the region, not the sweep."""
    window = sweep.window
    regions = (window.region,)
    try:
        chunks = client.historical_updates(window.region, window.start, window.end, sweep.updated_since)
        frame = _validated(window, chunks)
        stored = sink.stored_moer(window.region, watttime.signal_type, watttime.source_name, window.start, window.end)
        revised, changes = _changed(frame, stored)
        if not revised.empty:
            sink.write_lines(
                carbon_intensity_lines(revised, signal_type=watttime.signal_type, source=watttime.source_name)
            )
    except WattTimeError as error:
        message = f"{window.describe()}: revision sweep: {error}"
        return _Refused(RegionFailure(regions, FailureKind.WATTTIME, message, retryable=error.retryable))
    except DataRejected as error:
        message = f"revision refused: {error}"
        return _Refused(RegionFailure(regions, FailureKind.DATA_REJECTED, message, retryable=False), rejected=error)
    except LineProtocolError as error:
        message = f"{window.describe()}: revision cannot be stored safely: {error}"
        return _Refused(RegionFailure(regions, FailureKind.DATA_REJECTED, message, retryable=False))
    except SinkWriteError as error:
        message = f"{window.describe()}: revision sweep: {error}"
        return _Refused(RegionFailure(regions, FailureKind.INFLUXDB_WRITE, message, retryable=error.retryable))
    return _Revised(window.region, len(frame), revised, changes)


def _validated(window: RegionWindow, chunks: Sequence[HistoricalChunk]) -> pd.DataFrame:
    """The revisions, checked whole as carbon_intensity checks its points, each with its ``last_updated``."""
    frames = [chunk.frame for chunk in chunks]
    if not any(len(frame) for frame in frames):
        return pd.DataFrame(columns=["point_time", "moer_lbs_per_mwh", "last_updated"])
    validated = validate_moer_frame(window, moer_frame(window, chunks))
    updated = pd.concat([frame[["point_time", "last_updated"]] for frame in frames], ignore_index=True)
    return validated.merge(updated.drop_duplicates("point_time", keep="last"), on="point_time", how="left")


def _changed(frame: pd.DataFrame, stored: Mapping[int, float]) -> tuple[pd.DataFrame, pd.Series]:
    """The stored points whose MOER WattTime changed, and each change in gCO2/kWh."""
    if frame.empty:
        return frame, pd.Series(dtype=float)
    seconds = frame["point_time"].astype("int64") // 1_000_000_000
    old = seconds.map(stored)
    changed = old.notna() & (old != frame["moer_lbs_per_mwh"])
    changes = ((frame["moer_lbs_per_mwh"] - old).abs() * LBS_PER_MWH_TO_G_PER_KWH).round(CHANGE_DECIMALS)
    return frame.loc[changed].reset_index(drop=True), changes.loc[changed].reset_index(drop=True)


def _summary(
    outcomes: Mapping[str, _Revised | _Refused], asked_at: datetime, previous: Mapping[str, datetime]
) -> dict[str, Any]:
    """Numeric figures of the sweep, for the UI's plots, and each region's ``swept_at`` for the next sweep."""
    revised = {region: item for region, item in outcomes.items() if isinstance(item, _Revised)}
    changes = pd.concat([pd.Series(dtype=float), *(item.changes for item in revised.values())], ignore_index=True)
    metadata: dict[str, Any] = {
        "points_checked": sum(item.checked for item in revised.values()),
        "points_revised": len(changes),
        "max_change_gco2_kwh": _rounded(changes.max()),
        "mean_change_gco2_kwh": _rounded(changes.mean()),
        "regions_refused": len(outcomes) - len(revised),
    }
    for region, item in sorted(revised.items()):
        metadata[f"points_revised/{region}"] = len(item.changes)
        metadata[f"max_change_gco2_kwh/{region}"] = _rounded(item.changes.max())
    swept = {region: asked_at for region in revised} | {
        region: moment for region, moment in previous.items() if region in outcomes and region not in revised
    }
    for region, moment in sorted(swept.items()):
        metadata[f"{SWEPT_AT}/{region}"] = dg.MetadataValue.timestamp(moment)
    return metadata


def _rounded(figure: float) -> float:
    """A change figure for the plot; a sweep that changed nothing plots 0, not a gap."""
    return 0.0 if pd.isna(figure) else round(float(figure), CHANGE_DECIMALS)
