"""Building blocks for end-to-end tests: the asset on a real instance, the simulator's truth, InfluxDB read-back."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import fmean

import dagster as dg

from carbon_pipeline.assets.carbon_forecast import build_forecast_assets
from carbon_pipeline.assets.carbon_intensity import VALID_DATA_CHECK, build_carbon_intensity_asset
from carbon_pipeline.assets.carbon_signal_index import build_signal_index_asset
from carbon_pipeline.partitions import (
    INTERVAL,
    RANGE_END_TAG,
    RANGE_START_TAG,
    build_carbon_partitions,
    build_issue_partitions,
    interval_key,
    region_partition_key,
    region_range_tags,
)
from carbon_pipeline.sinks.influxdb import InfluxDBResource
from carbon_pipeline.sinks.line_protocol import LBS_PER_MWH_TO_G_PER_KWH
from carbon_pipeline.validation import GCO2_KWH_DECIMALS
from carbon_pipeline.watttime.resource import WattTimeResource
from carbon_pipeline.watttime.simulator import SIMULATOR_PASSWORD, SIMULATOR_USERNAME, issued_forecast
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer

# Re-exported: most tests take the truth from here, with the rest of the harness.
from carbon_pipeline_tests.support.moer_truth import StoredPoint as StoredPoint
from carbon_pipeline_tests.support.moer_truth import truth as truth

REPO = Path(__file__).resolve().parents[2]
REGIONS = ("CAISO_NORTH", "PJM_DC", "IE")
PARTITIONS_START = datetime(2025, 1, 1, tzinfo=UTC)
PARTITIONS = build_carbon_partitions(REGIONS, PARTITIONS_START)
ASSET = build_carbon_intensity_asset(PARTITIONS)
FORECAST_HORIZON_HOURS = 24
WINDOW_HOURS = (1, 2, 4)
FORECAST_ASSET = build_forecast_assets(
    build_issue_partitions(REGIONS, PARTITIONS_START), FORECAST_HORIZON_HOURS, WINDOW_HOURS
)
INDEX_ASSET = build_signal_index_asset(build_issue_partitions(REGIONS, PARTITIONS_START), "co2_moer")
# A run takes a second or two; one started this close to the interval's end could see the next interval.
INDEX_ROOM = timedelta(seconds=20)
FORECAST_POINT_SECONDS = 300
FORECAST_POINTS = FORECAST_HORIZON_HOURS * 3600 // FORECAST_POINT_SECONDS

ForecastPoints = dict[tuple[int, int], tuple[int, float, float]]
"""(generated_at, point time) -> (horizon minutes, MOER, gCO2/kWh), times in Unix seconds."""
Windows = dict[tuple[int, int], tuple[int, float]]
"""(issue time, window hours) -> (window start, mean gCO2/kWh), times in Unix seconds."""


def watttime_resource(base_url: str, **overrides: object) -> WattTimeResource:
    options: dict[str, object] = {"max_attempts": 4, "max_retry_seconds": 10.0, "timeout_seconds": 5.0}
    options.update(overrides)
    return WattTimeResource(username=SIMULATOR_USERNAME, password=SIMULATOR_PASSWORD, base_url=base_url, **options)


def influxdb_resource(host: str, database: str, **overrides: object) -> InfluxDBResource:
    options: dict[str, object] = {"max_attempts": 3, "max_retry_seconds": 5.0, "backoff_max_seconds": 0.2}
    options.update(overrides)
    return InfluxDBResource(host=host, token="test-token", database=database, **options)


def materialize(
    resources: Mapping[str, object],
    region: str,
    first: datetime,
    last: datetime | None = None,
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    """Materialize ``first``..``last`` (interval starts, inclusive) as one run, as a single-run backfill does."""
    tags = region_range_tags(region, first, last or first)
    return dg.materialize([ASSET], resources=dict(resources), tags=tags, instance=instance, raise_on_error=False)


def materialize_forecasts(
    resources: Mapping[str, object],
    regions: tuple[str, str],
    first: datetime,
    last: datetime | None = None,
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    """Issue intervals ``first``..``last`` of the regions ``regions[0]``..``regions[1]``, as one run."""
    tags = {
        RANGE_START_TAG: str(region_partition_key(regions[0], first)),
        RANGE_END_TAG: str(region_partition_key(regions[1], last or first)),
    }
    return dg.materialize(
        [FORECAST_ASSET], resources=dict(resources), tags=tags, instance=instance, raise_on_error=False
    )


def interval_under_way() -> datetime:
    """The current interval's start, once enough of it is left for a run to finish inside it: the signal index
    is served for the interval under way only."""
    now = datetime.now(UTC)
    start = now - (now - datetime(1970, 1, 1, tzinfo=UTC)) % INTERVAL
    if start + INTERVAL - now < INDEX_ROOM:
        time.sleep((start + INTERVAL - now).total_seconds())
        return start + INTERVAL
    return start


def materialize_index(
    resources: Mapping[str, object], regions: tuple[str, str], interval: datetime
) -> dg.ExecuteInProcessResult:
    """The signal index of interval ``interval`` for the regions ``regions[0]``..``regions[1]``, as one run."""
    tags = {
        RANGE_START_TAG: str(region_partition_key(regions[0], interval)),
        RANGE_END_TAG: str(region_partition_key(regions[1], interval)),
    }
    return dg.materialize([INDEX_ASSET], resources=dict(resources), tags=tags, raise_on_error=False)


def materialize_regions(
    resources: Mapping[str, object],
    regions: tuple[str, str],
    first: datetime,
    last: datetime,
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    """Materialize ``first``..``last`` of every region from ``regions[0]`` to ``regions[1]`` (in ``REGIONS``'
    order) as one run: Dagster resolves a multi-partition range dimension by dimension."""
    tags = {
        RANGE_START_TAG: str(region_partition_key(regions[0], first)),
        RANGE_END_TAG: str(region_partition_key(regions[1], last)),
    }
    return dg.materialize([ASSET], resources=dict(resources), tags=tags, instance=instance, raise_on_error=False)


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    (event,) = [event for event in result.all_events if event.is_step_failure]
    return event.step_failure_data.error.message


def declared_failure(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    """The metadata the run's failure declares (failure kind, retryability, failed regions), as plain values."""
    (event,) = [event for event in result.all_events if event.is_step_failure]
    user = event.step_failure_data.user_failure_data
    assert user is not None, event.step_failure_data.error
    return {key: value.value for key, value in user.metadata.items()}


def check_evaluation(result: dg.ExecuteInProcessResult, check_name: str = VALID_DATA_CHECK) -> dg.AssetCheckEvaluation:
    (evaluation,) = [
        event.event_specific_data
        for event in result.all_events
        if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
        and event.event_specific_data.check_name == check_name
    ]
    return evaluation


def materialization_metadata(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    event = result.get_asset_materialization_events()[0]
    return {key: value.value for key, value in event.materialization.metadata.items()}


def metadata_by_partition(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, object]]:
    """Each materialized partition's metadata, in the order the run recorded the materializations."""
    return {
        str(event.partition): {key: value.value for key, value in event.materialization.metadata.items()}
        for event in result.get_asset_materialization_events()
    }


def stored_points(server: InfluxDBServer, database: str, region: str) -> list[StoredPoint]:
    rows = server.query(
        f"SELECT moer_lbs_per_mwh, carbon_intensity_gco2_kwh FROM carbon_intensity WHERE region = '{region}'",
        database,
    )
    return [StoredPoint(row["time"], row["moer_lbs_per_mwh"], row["carbon_intensity_gco2_kwh"]) for row in rows]


def stored_count(server: InfluxDBServer, database: str, where: str = "") -> int:
    """How many measured points InfluxDB holds, optionally only those a WHERE clause selects."""
    rows = server.query(f"SELECT count(moer_lbs_per_mwh) FROM carbon_intensity {where}", database)
    return rows[0]["count"] if rows else 0


def own_figures(
    region: str, points: Iterable[StoredPoint], first: datetime, end: datetime, data_source: str, model_date: str
) -> dict[str, dict[str, object]]:
    """What each interval of ``region`` in [first, end) must say of itself, worked out from the points stored.

    An interval holds the points that start inside it; one without any (an hourly region's) has only
    its count.
    """
    by_interval: dict[str, list[float]] = {}
    for point in points:
        start = datetime.fromtimestamp(point.time - point.time % int(INTERVAL.total_seconds()), UTC)
        by_interval.setdefault(interval_key(start), []).append(point.grams)
    figures: dict[str, dict[str, object]] = {}
    moment = first
    while moment < end:
        grams = by_interval.get(interval_key(moment), [])
        own: dict[str, object] = {"data_source": data_source, "points": len(grams), "dagster/row_count": len(grams)}
        if grams:
            own |= {
                "watttime_model_date": model_date,
                "gco2_kwh_min": round(min(grams), 3),
                "gco2_kwh_mean": round(fmean(grams), 3),
                "gco2_kwh_max": round(max(grams), 3),
            }
        figures[str(region_partition_key(region, moment))] = own
        moment += INTERVAL
    return figures


def stored_forecasts(server: InfluxDBServer, database: str, region: str) -> ForecastPoints:
    """Every forecast point of ``region`` in InfluxDB."""
    rows = server.query(
        "SELECT generated_at, horizon_minutes, moer_lbs_per_mwh, carbon_intensity_gco2_kwh FROM carbon_forecast "
        f"WHERE region = '{region}'",
        database,
    )
    return {
        (row["generated_at"], row["time"]): (
            int(row["horizon_minutes"]),
            row["moer_lbs_per_mwh"],
            row["carbon_intensity_gco2_kwh"],
        )
        for row in rows
    }


def forecast_truth(region: str, issues: Iterable[datetime]) -> ForecastPoints:
    """What the pipeline must store for these issue intervals: the simulator's forecast issued at each start."""
    expected = {}
    for issue in issues:
        generated_at = int(issue.timestamp())
        for index, moer in enumerate(issued_forecast(region, generated_at, FORECAST_HORIZON_HOURS)):
            grams = round(moer * LBS_PER_MWH_TO_G_PER_KWH, GCO2_KWH_DECIMALS)
            expected[(generated_at, generated_at + index * FORECAST_POINT_SECONDS)] = (index * 5, moer, grams)
    return expected


def stored_windows(server: InfluxDBServer, database: str, region: str) -> Windows:
    """Every cleanest window of ``region`` in InfluxDB."""
    rows = server.query(
        "SELECT window_start, mean_gco2_kwh FROM carbon_cleanest_window "
        f"WHERE region = '{region}' GROUP BY window_hours",
        database,
    )
    return {(row["time"], int(row["window_hours"])): (row["window_start"], row["mean_gco2_kwh"]) for row in rows}


def window_truth(region: str, issues: Iterable[datetime]) -> Windows:
    """The cleanest windows of the true forecasts, found by trying every start."""
    expected = {}
    for issue in issues:
        points = forecast_truth(region, [issue])
        grams = [grams for _, _, grams in (points[key] for key in sorted(points))]
        first = int(issue.timestamp())
        for hours in WINDOW_HOURS:
            start, mean = _brute_force_window(grams, hours * 3600 // FORECAST_POINT_SECONDS)
            expected[(first, hours)] = (first + start * FORECAST_POINT_SECONDS, mean)
    return expected


def _brute_force_window(grams: Sequence[float], points: int) -> tuple[int, float]:
    """Index and mean of the earliest cleanest run of ``points`` values, summed exactly in 1e-4 g units."""
    units = [round(value * 10**GCO2_KWH_DECIMALS) for value in grams]
    sums = [sum(units[start : start + points]) for start in range(len(units) - points + 1)]
    best = min(sums)
    return sums.index(best), round(best / points / 10**GCO2_KWH_DECIMALS, GCO2_KWH_DECIMALS)
