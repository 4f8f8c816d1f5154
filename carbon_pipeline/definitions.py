"""Everything Dagster loads, assembled in one place for the deployment named by ``DAGSTER_DEPLOYMENT``.

``local`` (default) runs against the embedded WattTime simulator and writes line-protocol files;
``prod`` needs real WattTime and InfluxDB settings and refuses to load without them.

Importing this module reads no setting: Dagster calls ``defs`` when it loads the code location (the
webserver, daemon, code server and each run worker), and that is when the environment is read. Tests
and the demo call ``build_definitions`` with settings of their own instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import partial

import dagster as dg

from carbon_pipeline.assets.average_carbon_forecast import build_average_forecast_asset
from carbon_pipeline.assets.average_carbon_intensity import build_average_intensity_asset, not_available, served_from
from carbon_pipeline.assets.carbon_forecast import ASSET_NAME, build_forecast_assets
from carbon_pipeline.assets.carbon_forecast_accuracy import build_day_partitions, build_forecast_accuracy_asset
from carbon_pipeline.assets.carbon_intensity import build_carbon_intensity_asset
from carbon_pipeline.assets.carbon_signal_index import build_signal_index_asset
from carbon_pipeline.assets.revision_sweep import build_revision_sweep_asset
from carbon_pipeline.assets.watttime_access import build_watttime_access_asset
from carbon_pipeline.dagster_private import UnresolvedAssetJobDefinition
from carbon_pipeline.deployments import resources_for
from carbon_pipeline.partitions import (
    HOUR,
    INTERVAL,
    PARTITION_COUNT_ADVICE,
    build_carbon_partitions,
    build_issue_partitions,
    build_zone_partitions,
    partition_count,
)
from carbon_pipeline.run_outcomes import ASSET_TAG
from carbon_pipeline.schedules import (
    AVERAGE_FORECAST_SCHEDULE_NAME,
    build_access_schedule,
    build_carbon_intensity_schedule,
    build_forecast_schedule,
    build_hourly_zone_schedule,
    build_revision_schedule,
    build_signal_index_schedule,
)
from carbon_pipeline.sensors.failure_alerts import build_failure_alert_sensor
from carbon_pipeline.sensors.freshness import build_freshness_check, build_freshness_sensor
from carbon_pipeline.sensors.gap_filler import SourceDepth, build_gap_filler_sensor
from carbon_pipeline.settings import PipelineSettings
from carbon_pipeline.watttime.access import FORECAST

JOB_NAME = "carbon_intensity_job"
FORECAST_JOB_NAME = "carbon_forecast_job"
REVISION_JOB_NAME = "carbon_intensity_revisions_job"
INDEX_JOB_NAME = "carbon_signal_index_job"
FORECAST_ALERTS = "carbon_forecast_failure_alerts"
INDEX_ALERTS = "carbon_signal_index_failure_alerts"
FORECAST_GAP_FILLER = "carbon_forecast_gap_filler"
ACCURACY_AUTOMATION = "carbon_forecast_accuracy_automation"
ACCESS_JOB_NAME = "watttime_access_job"
ACCESS_AUTOMATION = "watttime_access_automation"
AVERAGE_JOB_NAME = "average_carbon_intensity_job"
AVERAGE_GAP_FILLER = "average_carbon_intensity_gap_filler"
AVERAGE_FORECAST_JOB_NAME = "average_carbon_forecast_job"
SIMULATED_NOTICE = (
    "SIMULATED DATA (local deployment): values come from the embedded WattTime simulator and are "
    "not real grid measurements; points are tagged source=simulator.\n\n"
)


@dg.definitions
def defs() -> dg.Definitions:
    """The definitions of the deployment the process environment describes, read when Dagster loads them."""
    return build_definitions(PipelineSettings.from_env())


def build_definitions(settings: PipelineSettings) -> dg.Definitions:
    return assemble_definitions(settings, resources_for(settings))


def assemble_definitions(settings: PipelineSettings, resources: Mapping[str, object]) -> dg.Definitions:
    """The assets, their jobs, schedules, checks and sensors around the given resources (tests pass their own)."""
    _warn_if_too_many_partitions(settings)
    return dg.Definitions.merge(
        _measurements(settings),
        _forecasts(settings),
        _revisions(settings),
        _signal_index(settings),
        _access(settings),
        _average(settings),
        _average_forecast(settings),
        dg.Definitions(resources=dict(resources), executor=dg.in_process_executor),
    )


def _measurements(settings: PipelineSettings) -> dg.Definitions:
    """What the grid's carbon intensity was: the MOER asset, its schedule, freshness, gap filling and alerts."""
    partitions = build_carbon_partitions(settings.regions, settings.partitions_start)
    (asset,) = _deployed(settings, [build_carbon_intensity_asset(partitions)])
    delay = timedelta(minutes=settings.schedule_delay_minutes)
    freshness_check = build_freshness_check(asset.key, partitions, delay)
    # Freshness is recorded by its sensor; a materialization run carries only the blocking data check.
    job = dg.define_asset_job(
        JOB_NAME,
        selection=dg.AssetSelection.assets(asset) - dg.AssetSelection.checks(freshness_check),
        executor_def=dg.in_process_executor,
        tags={ASSET_TAG: asset.key.to_user_string()},
    )
    return dg.Definitions(
        assets=[asset],
        asset_checks=[freshness_check],
        jobs=[job],
        schedules=[build_carbon_intensity_schedule(job, partitions, settings.schedule_delay_minutes)],
        sensors=[
            build_failure_alert_sensor(asset.key, partitions, settings.alert_after_failures),
            build_freshness_sensor(asset.key, partitions, delay),
            build_gap_filler_sensor(
                job,
                asset.key,
                partitions,
                timedelta(hours=settings.gap_fill_hours),
                delay,
                settings.gap_fill_max_runs,
                stalled_after=timedelta(seconds=settings.stalled_run_seconds),
                refused_retry_after=timedelta(minutes=settings.refused_retry_minutes),
            ),
        ],
    )


def _revisions(settings: PipelineSettings) -> dg.Definitions:
    """What WattTime changed afterwards: the revision sweep over the stored measurements, and its schedule."""
    (asset,) = _deployed(settings, [build_revision_sweep_asset(settings.regions, settings.revision_days)])
    job = _asset_job(REVISION_JOB_NAME, asset)
    return dg.Definitions(assets=[asset], jobs=[job], schedules=[build_revision_schedule(job)])


def _signal_index(settings: PipelineSettings) -> dg.Definitions:
    """Where now ranks in the coming day: the signal index asset, its schedule early in each interval, and alerts.

    Its intervals are the MOER asset's keys plus the one under way (issue partitions), the only one WattTime
    serves an index for; no gap filler, since an interval that is over can never be filled.
    """
    partitions = build_issue_partitions(settings.regions, settings.partitions_start)
    (asset,) = _deployed(settings, [build_signal_index_asset(partitions, settings.index_signal_type)])
    job = _asset_job(INDEX_JOB_NAME, asset)
    schedule = build_signal_index_schedule(job, partitions, settings.index_delay_minutes)
    alerts = build_failure_alert_sensor(
        asset.key, partitions, settings.alert_after_failures, INDEX_ALERTS, subject="signal index"
    )
    return dg.Definitions(assets=[asset], jobs=[job], schedules=[schedule], sensors=[alerts])


def _access(settings: PipelineSettings) -> dg.Definitions:
    """What the WattTime plan allows: read once a day, and as soon as a deployment starts without a read."""
    (asset,) = _deployed(settings, [build_watttime_access_asset(settings.regions)])
    job = _asset_job(ACCESS_JOB_NAME, asset)
    automation = dg.AutomationConditionSensorDefinition(
        ACCESS_AUTOMATION,
        target=dg.AssetSelection.assets(asset),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=60,
        description="Reads the WattTime plan as soon as a deployment has no watttime_access materialization.",
    )
    return dg.Definitions(assets=[asset], jobs=[job], schedules=[build_access_schedule(job)], sensors=[automation])


def _average(settings: PipelineSettings) -> dg.Definitions:
    """What each kWh consumed in a zone emitted (Electricity Maps): its asset, hourly schedule and gap filler.

    Nothing at all without ``CARBON_ELECTRICITYMAPS_ZONES``: deployments that do not ask for it are unchanged.
    The gap filler never requests an hour older than the plan serves and counts those in its log instead.
    """
    if not settings.electricitymaps_zones:
        return dg.Definitions()
    hours = settings.electricitymaps_history_hours
    partitions = build_zone_partitions(settings.electricitymaps_zones, settings.partitions_start, HOUR)
    (asset,) = _deployed(settings, [build_average_intensity_asset(partitions, hours)])
    job = _asset_job(AVERAGE_JOB_NAME, asset)
    gap_filler = build_gap_filler_sensor(
        job,
        asset.key,
        partitions,
        timedelta(hours=settings.gap_fill_hours),
        timedelta(minutes=settings.schedule_delay_minutes),
        settings.gap_fill_max_runs,
        AVERAGE_GAP_FILLER,
        stalled_after=timedelta(seconds=settings.stalled_run_seconds),
        refused_retry_after=timedelta(minutes=settings.refused_retry_minutes),
        endpoint=None,
        depth=SourceDepth(partial(served_from, history_hours=hours), not_available(hours)),
    )
    schedule = build_hourly_zone_schedule(job, partitions, settings.schedule_delay_minutes)
    return dg.Definitions(assets=[asset], jobs=[job], schedules=[schedule], sensors=[gap_filler])


def _average_forecast(settings: PipelineSettings) -> dg.Definitions:
    """What each kWh consumed in a zone will emit (Electricity Maps' forecast) and its cleanest windows, hourly.

    Only with zones and ``CARBON_ELECTRICITYMAPS_FORECAST``: a free token is refused forecasts, and whether a
    plan serves them cannot be read from the API. No gap filler: an issue hour that is over cannot be fetched.
    """
    if not (settings.electricitymaps_zones and settings.electricitymaps_forecast):
        return dg.Definitions()
    partitions = build_zone_partitions(settings.electricitymaps_zones, settings.partitions_start, HOUR, end_offset=1)
    asset_def = build_average_forecast_asset(partitions, settings.electricitymaps_forecast_hours, settings.window_hours)
    (asset,) = _deployed(settings, [asset_def])
    job = _asset_job(AVERAGE_FORECAST_JOB_NAME, asset)
    schedule = build_hourly_zone_schedule(
        job, partitions, settings.forecast_delay_minutes, AVERAGE_FORECAST_SCHEDULE_NAME
    )
    return dg.Definitions(assets=[asset], jobs=[job], schedules=[schedule])


def _asset_job(name: str, asset: dg.AssetsDefinition) -> UnresolvedAssetJobDefinition:
    """The in-process job of one asset, tagged with it so sensors can tell whose runs are whose."""
    return dg.define_asset_job(
        name,
        selection=dg.AssetSelection.assets(asset),
        executor_def=dg.in_process_executor,
        tags={ASSET_TAG: asset.key.to_user_string()},
    )


def _forecasts(settings: PipelineSettings) -> dg.Definitions:
    """What the grid's carbon intensity will be: the forecast asset, its schedule, gap filling and alerts."""
    issues = build_issue_partitions(settings.regions, settings.partitions_start)
    days = build_day_partitions(settings.regions, settings.partitions_start, settings.forecast_horizon_hours)
    forecast, accuracy = _deployed(
        settings,
        [
            build_forecast_assets(issues, settings.forecast_horizon_hours, settings.window_hours),
            build_forecast_accuracy_asset(days, settings.forecast_horizon_hours, settings.window_hours),
        ],
    )
    job = dg.define_asset_job(
        FORECAST_JOB_NAME,
        selection=dg.AssetSelection.assets(forecast),
        executor_def=dg.in_process_executor,
        tags={ASSET_TAG: ASSET_NAME},
    )
    # The forecast run starts shortly after its interval begins, not after it ends as the measurement's does.
    after_interval_end = timedelta(minutes=settings.forecast_delay_minutes) - INTERVAL
    return dg.Definitions(
        assets=[forecast, accuracy],
        jobs=[job],
        schedules=[build_forecast_schedule(job, issues, settings.forecast_delay_minutes)],
        sensors=[
            build_failure_alert_sensor(
                dg.AssetKey(ASSET_NAME), issues, settings.alert_after_failures, FORECAST_ALERTS, subject="forecasts"
            ),
            # Dagster's own default automation sensor starts stopped: the accuracy of each day should not
            # wait for someone to find a toggle.
            dg.AutomationConditionSensorDefinition(
                ACCURACY_AUTOMATION,
                target=dg.AssetSelection.assets(accuracy),
                default_status=dg.DefaultSensorStatus.RUNNING,
                minimum_interval_seconds=60,
                description="Judges each region's day of forecasts once all of them and all they cover are stored.",
            ),
            build_gap_filler_sensor(
                job,
                dg.AssetKey(ASSET_NAME),
                issues,
                timedelta(hours=settings.gap_fill_hours),
                after_interval_end,
                settings.gap_fill_max_runs,
                FORECAST_GAP_FILLER,
                stalled_after=timedelta(seconds=settings.stalled_run_seconds),
                refused_retry_after=timedelta(minutes=settings.refused_retry_minutes),
                endpoint=FORECAST,
            ),
        ],
    )


def _deployed(settings: PipelineSettings, assets: list[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    return _marked_simulated(assets) if settings.deployment == "local" else assets


def _marked_simulated(assets: list[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """Make it impossible to mistake local data for real grid data anywhere in the UI."""
    return list(
        dg.map_asset_specs(
            lambda spec: spec.replace_attributes(
                description=SIMULATED_NOTICE + (spec.description or ""),
                tags={**spec.tags, "data": "simulated"},
            ),
            assets,
        )
    )


def _warn_if_too_many_partitions(settings: PipelineSettings) -> None:
    count = partition_count(settings.regions, settings.partitions_start, datetime.now(UTC))
    if count > PARTITION_COUNT_ADVICE:
        dg.get_dagster_logger().warning(
            "%d region x interval partitions exceed Dagster's advice of %d; the UI slows down. "
            "Move CARBON_PARTITIONS_START later (or make it a rolling window such as 28d) "
            "or configure fewer CARBON_REGIONS.",
            count,
            PARTITION_COUNT_ADVICE,
        )
