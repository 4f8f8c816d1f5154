"""``carbon-pipeline demo``: every asset materialized on the local deployment, as the UI would launch the runs.

The last day of measurements, the forecasts of the newest day that can be judged and the one under way, that
day's accuracy, the next cleanest window an automation would act on, the signal index of the interval under
way, a revision sweep, and the last hours of an Electricity Maps zone's average intensity shown side by side
with the marginal one: all from the embedded simulators, into line-protocol files, on the instance ``make ui``
then opens.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from carbon_pipeline.assets.average_carbon_intensity import VALID_DATA_CHECK as AVERAGE_CHECK
from carbon_pipeline.assets.average_carbon_intensity import served_from
from carbon_pipeline.assets.carbon_forecast import VALID_FORECAST_CHECK, WINDOW_ASSET_NAME
from carbon_pipeline.assets.carbon_forecast_accuracy import ACCURACY_ASSET_NAME, DAY_DIMENSION
from carbon_pipeline.assets.carbon_intensity import VALID_DATA_CHECK
from carbon_pipeline.definitions import (
    AVERAGE_JOB_NAME,
    FORECAST_JOB_NAME,
    INDEX_JOB_NAME,
    JOB_NAME,
    REVISION_JOB_NAME,
    build_definitions,
)
from carbon_pipeline.partitions import (
    HOUR,
    INTERVAL,
    TIME_DIMENSION,
    interval_key,
    interval_range_tags,
    interval_start,
    region_range_tags,
    regions_range_tags,
)
from carbon_pipeline.settings import PipelineSettings

DEMO_HOURS = 24
DEMO_WINDOW_HOURS = 2
# The run's full event log is in the UI; the terminal only needs warnings and the summary.
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass(frozen=True)
class _Demo:
    definitions: dg.Definitions
    instance: dg.DagsterInstance
    now: datetime

    def run(self, job_name: str, tags: dict[str, str]) -> dg.ExecuteInProcessResult | None:
        job = self.definitions.resolve_job_def(job_name)
        result = job.execute_in_process(instance=self.instance, tags=tags, run_config=QUIET_LOGS, raise_on_error=False)
        if result.success:
            return result
        print(f"run {result.run_id} of {job_name} failed; see the UI or `dagster run logs`.", file=sys.stderr)
        return None


def demo() -> int:
    """Measurements, forecasts, windows and accuracy on the local instance; 1 if any run failed."""
    now = datetime.now(UTC)
    settings = PipelineSettings.for_demo(now)
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    # Dagster's instance is found through the process environment; the UI then opens the same one.
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    definitions = build_definitions(settings)
    first, last = demo_intervals(definitions.resolve_job_def(JOB_NAME), now)
    day = judged_day(definitions, now)
    with dg.DagsterInstance.get() as instance:
        demo = _Demo(definitions, instance, now)
        measurements = [_measure(demo, region, _day_start(day) if day else first, last) for region in settings.regions]
        measured = all(result is not None for result in measurements)
        averaged = _average(demo, settings)
        forecast = _forecast_now(demo, settings.regions)
        judged = day is None or all(_forecast_and_judge(demo, region, day) for region in settings.regions)
        swept = _sweep_revisions(demo, settings.revision_days)
        indexed = _index_now(demo, settings.regions)
        if forecast is not None:
            _print_windows(
                forecast, settings.regions, min(settings.window_hours, key=lambda hours: abs(hours - DEMO_WINDOW_HOURS))
            )
        if measurements[0] is not None and isinstance(averaged, dg.ExecuteInProcessResult):
            _print_side_by_side(measurements[0], averaged, settings)
    print(f"Dagster instance: {settings.dagster_home}")
    print("Open the UI with `make ui` (http://127.0.0.1:3000) to see the runs, partitions and metadata.")
    return 0 if measured and averaged is not None and forecast is not None and judged and swept and indexed else 1


def demo_intervals(job: dg.JobDefinition, now: datetime) -> tuple[datetime, datetime]:
    """Starts of the first and last closed 15-minute intervals of the last day, as the schedule sees them.

    A window that starts less than a day ago (``CARBON_PARTITIONS_START`` set to today) is covered from its start.
    """
    intervals = _time_dimension(job.partitions_def, TIME_DIMENSION)
    with dg.partition_loading_context(effective_dt=now):
        last_key = intervals.get_last_partition_key()
    assert last_key is not None, "the partitions start after now"
    last = interval_start(last_key)
    return max(intervals.start, last - (DEMO_HOURS * 4 - 1) * INTERVAL), last


def judged_day(definitions: dg.Definitions, now: datetime) -> date | None:
    """The newest day whose forecasts can be judged now (its whole horizon is past), if the window holds one."""
    days = _time_dimension(definitions.resolve_assets_def(ACCURACY_ASSET_NAME).partitions_def, DAY_DIMENSION)
    with dg.partition_loading_context(effective_dt=now):
        newest = days.get_last_partition_key()
    return None if newest is None else date.fromisoformat(newest)


def _time_dimension(partitions_def: dg.PartitionsDefinition | None, name: str) -> dg.TimeWindowPartitionsDefinition:
    assert isinstance(partitions_def, dg.MultiPartitionsDefinition)
    dimension = partitions_def.get_partitions_def_for_dimension(name)
    assert isinstance(dimension, dg.TimeWindowPartitionsDefinition)
    return dimension


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _measure(demo: _Demo, region: str, first: datetime, last: datetime) -> dg.ExecuteInProcessResult | None:
    result = demo.run(JOB_NAME, region_range_tags(region, first, last))
    if result is None:
        return None
    summary = _check_metadata(result, VALID_DATA_CHECK)
    print(
        f"{region}: {summary['points_written'].value} points for intervals {interval_key(first)} to "
        f"{interval_key(last)} (UTC) written to {summary['destination'].value} [{summary['data_source'].value}]"
    )
    return result


def _average(demo: _Demo, settings: PipelineSettings) -> dg.ExecuteInProcessResult | bool | None:
    """The hours of the last day the Electricity Maps plan serves, for every configured zone, in one run.

    ``True`` when no zone is configured (nothing to show), ``None`` when the run failed. The hours are placed
    when the run starts, not when the demo did: an hour that has just left the plan's last day is not served.
    """
    zones = settings.electricitymaps_zones
    if not zones:
        return True
    now = datetime.now(UTC)
    job = demo.definitions.resolve_job_def(AVERAGE_JOB_NAME)
    hours = _time_dimension(job.partitions_def, TIME_DIMENSION)
    with dg.partition_loading_context(effective_dt=now):
        last_key = hours.get_last_partition_key()
    assert last_key is not None, "the partitions start after now"
    last = interval_start(last_key)
    first = max(hours.start, served_from(now, settings.electricitymaps_history_hours), last - (DEMO_HOURS - 1) * HOUR)
    result = demo.run(AVERAGE_JOB_NAME, regions_range_tags(zones, first, last))
    if result is not None:
        summary = _check_metadata(result, AVERAGE_CHECK)
        print(
            f"{summary['zones'].value}: {summary['points_written'].value} average intensity points for hours "
            f"{interval_key(first)} to {interval_key(last)} (UTC) written to {summary['destination'].value} "
            f"[{result.get_asset_materialization_events()[0].materialization.metadata['data_source'].value}]"
        )
    return result


def _print_side_by_side(
    marginal: dg.ExecuteInProcessResult, average: dg.ExecuteInProcessResult, settings: PipelineSettings
) -> None:
    """The newest hour of both quantities, with their units and what each is for: they answer different questions."""
    averages = average.get_asset_materialization_events()
    newest = max(str(event.partition).split("|")[1] for event in averages)
    region, zone = settings.regions[0], settings.electricitymaps_zones[0]
    hour = interval_start(newest)
    quarters = {interval_key(hour + index * INTERVAL) for index in range(4)}
    moer = [
        float(event.materialization.metadata["gco2_kwh_mean"].value)  # type: ignore[arg-type]
        for event in marginal.get_asset_materialization_events()
        if str(event.partition).split("|")[1] in quarters
    ]
    (point,) = [event.materialization.metadata for event in averages if str(event.partition) == f"{zone}|{newest}"]
    print(f"Side by side, the hour {hour:%Y-%m-%d %H:%M} UTC:")
    print(
        f"  {region} marginal (WattTime MOER): {sum(moer) / len(moer):.1f} gCO2/kWh: what one more kWh used now "
        "emits; use it to decide when to shift a load [SIMULATED]"
    )
    print(
        f"  {zone} average (Electricity Maps, {settings.electricitymaps_emission_factor}): "
        f"{point['gco2eq_per_kwh'].value:.1f} gCO2eq/kWh: what each kWh consumed emitted; use it for the footprint "
        "of what you used [SIMULATED]"
    )


def _forecast_now(demo: _Demo, regions: tuple[str, ...]) -> dg.ExecuteInProcessResult | None:
    """The forecast of the interval under way for every region, as the schedule's tick fetches it."""
    under_way = demo.now - (demo.now - _day_start(demo.now.date())) % INTERVAL
    return demo.run(FORECAST_JOB_NAME, interval_range_tags(regions, under_way))


def _index_now(demo: _Demo, regions: tuple[str, ...]) -> bool:
    """The signal index of the interval under way for every region, as its schedule's tick asks for it.

    The interval is the one under way when the run starts, not when the demo did: the index is served for it only.
    """
    now = datetime.now(UTC)
    result = demo.run(INDEX_JOB_NAME, interval_range_tags(regions, now - (now - _day_start(now.date())) % INTERVAL))
    if result is None:
        return False
    for event in result.get_asset_materialization_events():
        metadata = event.materialization.metadata
        print(
            f"{str(event.partition).split('|')[0]}: signal index {metadata['percentile'].value:g} of 100 (0 cleanest) "
            f"for {event.partition} [{metadata['data_source'].value}]"
        )
    return True


def _forecast_and_judge(demo: _Demo, region: str, day: date) -> bool:
    """The day's forecasts from the archive, then the day judged against what was published."""
    start = _day_start(day)
    forecasts = demo.run(FORECAST_JOB_NAME, region_range_tags(region, start, start + timedelta(days=1) - INTERVAL))
    if forecasts is None:
        return False
    summary = _check_metadata(forecasts, VALID_FORECAST_CHECK)
    print(
        f"{region}: {summary['issues_written'].value} forecasts issued {day.isoformat()} (UTC), "
        f"{summary['points_written'].value} points"
    )
    key = dg.MultiPartitionKey({"region": region, DAY_DIMENSION: day.isoformat()})
    # The resolved asset carries the deployment's resources already.
    asset = demo.definitions.resolve_assets_def(ACCURACY_ASSET_NAME)
    judged = dg.materialize(
        [asset],
        instance=demo.instance,
        partition_key=str(key),
        run_config=QUIET_LOGS,
        raise_on_error=False,
    )
    if not judged.success:
        print(f"{region}: accuracy run {judged.run_id} failed; see the UI.", file=sys.stderr)
        return False
    metadata = judged.asset_materializations_for_node(ACCURACY_ASSET_NAME)[0].metadata
    print(
        f"{region}: forecasts of {day.isoformat()} against what was published: mean absolute error "
        f"{metadata['mae_0_to_1h_gco2_kwh'].value:g} gCO2/kWh within 1 h, {metadata['mae_6_to_24h_gco2_kwh'].value:g} "
        f"6 to 24 h ahead"
    )
    return True


def _sweep_revisions(demo: _Demo, days: int) -> bool:
    """One revision sweep, as its hourly schedule runs it.

    The points just stored are WattTime's current values, so it finds few or none; the sweeps the schedule runs
    later under ``make ui`` find the simulator's revisions, made half an hour after publishing.
    """
    result = demo.run(REVISION_JOB_NAME, {})
    if result is None:
        return False
    (event,) = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    print(
        f"revision sweep of the last {days} days: {metadata['points_revised'].value} stored points revised by "
        f"WattTime since they were written (max change {metadata['max_change_gco2_kwh'].value:g} gCO2/kWh)"
    )
    return True


def _print_windows(result: dg.ExecuteInProcessResult, regions: tuple[str, ...], hours: int) -> None:
    """What an automation would act on: the next cleanest window of the forecast just stored, per region."""
    own = {
        str(event.partition): event.materialization.metadata
        for event in result.get_asset_materialization_events()
        if event.asset_key == dg.AssetKey(WINDOW_ASSET_NAME)
    }
    for region in regions:
        keys = [key for key in own if key.startswith(f"{region}|")]
        if not keys:
            continue
        window = own[keys[0]]
        start_value = window[f"cleanest_{hours}h_start"]
        assert isinstance(start_value, dg.TimestampMetadataValue)
        start = datetime.fromtimestamp(start_value.value, UTC)
        print(
            f"{region}: next cleanest {hours} h window starts {start:%Y-%m-%d %H:%M} UTC, "
            f"{window[f'cleanest_{hours}h_gco2_kwh'].value:g} gCO2/kWh, "
            f"{window[f'cleanest_{hours}h_cleaner_than_now_percent'].value:g} % cleaner than running now; "
            f"now ranks at {window['current_percentile'].value:g} % of the next 24 h (0 = cleanest) [SIMULATED]"
        )


def _check_metadata(result: dg.ExecuteInProcessResult, check_name: str) -> dict[str, dg.MetadataValue]:
    """What the run wrote: the summary the asset puts on its data check, one per run."""
    (evaluation,) = [item for item in result.get_asset_check_evaluations() if item.check_name == check_name]
    return dict(evaluation.metadata)
