"""Everything the code location defines, per deployment, as a reviewed snapshot (``__snapshots__/``).

A change to an asset, its partitions, checks, job, schedule, sensors or resources shows up as a diff of
the snapshot file in the same change. After an intended change: ``pytest --snapshot-update``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
from syrupy.assertion import SnapshotAssertion

from carbon_pipeline.assets.carbon_intensity import VALID_DATA_CHECK
from carbon_pipeline.definitions import JOB_NAME, build_definitions
from carbon_pipeline.sensors.freshness import CHECK_NAME as FRESHNESS_CHECK
from carbon_pipeline.sensors.freshness import SENSOR_NAME as FRESHNESS_SENSOR
from carbon_pipeline.settings import PipelineSettings

SETTINGS = {"CARBON_REGIONS": "CAISO_NORTH,PJM_DC", "CARBON_PARTITIONS_START": "2025-06-01"}
LOCAL_ENV = SETTINGS | {"DAGSTER_HOME": "/srv/dagster"}
PROD_ENV = SETTINGS | {
    "DAGSTER_DEPLOYMENT": "prod",
    "DAGSTER_HOME": "/opt/dagster/home",
    "CARBON_SCHEDULE_DELAY_MINUTES": "7",
    "CARBON_UI_URL": "https://dagster.example.org",
    "WATTTIME_USERNAME": "grid-user",
    "WATTTIME_PASSWORD": "S3cret-Pass!",
    "INFLUXDB_HOST": "https://influx.internal:8181",
    "INFLUXDB_TOKEN": "real-token",
    "INFLUXDB_DATABASE": "carbon",
    "ALERT_WEBHOOK_URL": "https://hooks.example.org/T000/B000/secret-path",
}
SECRETS = ("S3cret-Pass!", "real-token", "secret-path")


def _defs(env: dict[str, str]) -> dg.Definitions:
    return build_definitions(PipelineSettings.from_env(env))


def describe(defs: dg.Definitions) -> dict[str, Any]:
    """The reviewable shape of ``defs``: plain values, sorted, no object addresses."""
    repository = defs.get_repository_def()
    graph = defs.resolve_asset_graph()
    return {
        "assets": {
            asset_key.to_user_string(): _asset(defs.resolve_assets_def(asset_key), asset_key)
            for asset_key in sorted(graph.get_all_asset_keys())
        },
        "asset_checks": {
            f"{key.asset_key.to_user_string()}:{key.name}": _check(graph.get_check_spec(key))
            for key in sorted(graph.asset_check_keys, key=lambda key: (key.asset_key.to_user_string(), key.name))
        },
        "default_executor": defs.executor.name if isinstance(defs.executor, dg.ExecutorDefinition) else None,
        "jobs": {
            name: _job(repository.get_job(name))
            for name in sorted(repository.job_names)
            if not name.startswith("__ASSET_JOB")
        },
        "schedules": {schedule.name: _schedule(schedule) for schedule in repository.schedule_defs},
        "sensors": {sensor.name: _sensor(sensor) for sensor in sorted(repository.sensor_defs, key=lambda s: s.name)},
        "resources": {key: _resource(resource) for key, resource in sorted((defs.resources or {}).items())},
    }


def _asset(asset: dg.AssetsDefinition, key: dg.AssetKey) -> dict[str, Any]:
    spec = asset.specs_by_key[key]
    schema = spec.metadata.get("dagster/column_schema")
    return {
        "group": spec.group_name,
        "kinds": sorted(spec.kinds),
        "tags": dict(sorted(spec.tags.items())),
        "partitions": _partitions(asset.partitions_def),
        "backfill_policy": str(asset.backfill_policy),
        "pool": asset.op.pool,
        "required_resources": sorted(asset.required_resource_keys),
        "columns": {column.name: column.type for column in schema.columns} if schema else None,
        "metadata_keys": sorted(spec.metadata),
    }


def _partitions(partitions: dg.PartitionsDefinition | None) -> Any:
    if isinstance(partitions, dg.MultiPartitionsDefinition):
        return {dimension.name: _partitions(dimension.partitions_def) for dimension in partitions.partitions_defs}
    if isinstance(partitions, dg.StaticPartitionsDefinition):
        return {"static": partitions.get_partition_keys()}
    if isinstance(partitions, dg.TimeWindowPartitionsDefinition):
        return {
            "cron": partitions.cron_schedule,
            "start": partitions.start.isoformat(),
            "end": partitions.end.isoformat() if partitions.end else None,
            "timezone": partitions.timezone,
            "format": partitions.fmt,
            "end_offset": partitions.end_offset,
        }
    return repr(partitions)


def _check(spec: dg.AssetCheckSpec) -> dict[str, Any]:
    return {"blocking": spec.blocking, "additional_deps": [str(dep.asset_key) for dep in spec.additional_deps]}


def _job(job: dg.JobDefinition) -> dict[str, Any]:
    layer = job.asset_layer
    return {
        "executor": job.executor_def.name,
        "partitioned": job.partitions_def is not None,
        "assets": sorted(key.to_user_string() for key in layer.selected_asset_keys),
        "checks": sorted(key.name for key in layer.asset_graph.asset_check_keys),
        "tags": dict(sorted(job.tags.items())),
    }


def _schedule(schedule: dg.ScheduleDefinition) -> dict[str, Any]:
    return {
        "cron": schedule.cron_schedule,
        "timezone": schedule.execution_timezone,
        "default_status": schedule.default_status.value,
        "job": schedule.job_name,
    }


def _sensor(sensor: dg.SensorDefinition) -> dict[str, Any]:
    return {
        "minimum_interval_seconds": sensor.minimum_interval_seconds,
        "default_status": sensor.default_status.value,
        "targets": sorted(target.job_name for target in sensor.targets),
        "required_resources": sorted(sensor.required_resource_keys),
        "description": sensor.description,
    }


def _resource(resource: object) -> dict[str, Any]:
    """Class and fields; a field read from the environment at launch shows as the variable's name only."""
    assert isinstance(resource, dg.ConfigurableResource)
    fields: dict[str, Any] = {}
    for name in type(resource).model_fields:
        value = getattr(resource, name)
        fields[name] = f"EnvVar({value.env_var_name})" if isinstance(value, dg.EnvVar) else value
    return {"class": type(resource).__name__, "fields": fields}


def test_local_definitions(snapshot: SnapshotAssertion) -> None:
    assert describe(_defs(LOCAL_ENV)) == snapshot


def test_prod_definitions(snapshot: SnapshotAssertion) -> None:
    described = describe(_defs(PROD_ENV))
    assert not [secret for secret in SECRETS if secret in repr(described)], "a secret reached the snapshot"
    assert described == snapshot


def test_check_severities_as_reported_by_a_local_run_and_the_freshness_sensor(
    snapshot: SnapshotAssertion, tmp_path: Path
) -> None:
    """Severity is not part of a check's definition: it is what the check reports. One local run of the
    first interval (embedded simulator) reports the data check; the freshness sensor, evaluated on that
    instance, reports its check."""
    defs = _defs(LOCAL_ENV | {"CARBON_LINE_PROTOCOL_DIR": str(tmp_path)})
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def(JOB_NAME).execute_in_process(
            instance=instance, partition_key="CAISO_NORTH|2025-06-01-00:00"
        )
        assert result.success
        (ran,) = result.get_asset_check_evaluations()
        notifier = (defs.resources or {})["alert_notifier"]
        context = dg.build_sensor_context(instance=instance, resources={"alert_notifier": notifier})
        sensed = defs.resolve_sensor_def(FRESHNESS_SENSOR)(context)
    assert isinstance(sensed, dg.SensorResult)
    (recorded,) = sensed.asset_events
    assert isinstance(recorded, dg.AssetCheckEvaluation)
    assert (ran.check_name, recorded.check_name) == (VALID_DATA_CHECK, FRESHNESS_CHECK)
    severities = {check.check_name: check.severity.value for check in (ran, recorded)}
    assert severities == snapshot
