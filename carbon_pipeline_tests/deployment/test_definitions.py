"""What the code location exposes, per deployment, and the schedule's run requests."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from carbon_pipeline.assets.carbon_forecast import VALID_FORECAST_CHECK
from carbon_pipeline.assets.carbon_intensity import VALID_DATA_CHECK
from carbon_pipeline.assets.carbon_signal_index import VALID_INDEX_CHECK
from carbon_pipeline.definitions import INDEX_JOB_NAME, JOB_NAME, build_definitions
from carbon_pipeline.notifier import AlertNotifier
from carbon_pipeline.sensors.failure_alerts import SENSOR_NAME as ALERTS
from carbon_pipeline.sensors.freshness import CHECK_NAME
from carbon_pipeline.sensors.freshness import SENSOR_NAME as FRESHNESS
from carbon_pipeline.sensors.gap_filler import SENSOR_NAME as GAP_FILLER
from carbon_pipeline.settings import ConfigurationError, PipelineSettings
from carbon_pipeline.sinks.files import LineProtocolFileSink
from carbon_pipeline.sinks.influxdb import InfluxDBResource
from carbon_pipeline.watttime.simulated import SimulatedWattTimeResource
from carbon_pipeline_tests.support.schedule_ticks import tick_requests

PROD_ENV = {
    "DAGSTER_DEPLOYMENT": "prod",
    "CARBON_REGIONS": "CAISO_NORTH,PJM_DC",
    "WATTTIME_USERNAME": "grid-user",
    "WATTTIME_PASSWORD": "S3cret-Pass!",
    "INFLUXDB_HOST": "https://influx.internal:8181",
    "INFLUXDB_TOKEN": "real-token",
    "INFLUXDB_DATABASE": "carbon",
}


# Local tests that materialize fixed 2025 intervals say so: the local default is a rolling four weeks.
LOCAL_2025 = {"CARBON_PARTITIONS_START": "2025-01-01"}


def _defs(env: dict[str, str], now: datetime | None = None) -> dg.Definitions:
    return build_definitions(PipelineSettings.from_env(env, now))


def _interval_keys(defs: dg.Definitions, now: datetime) -> list[str]:
    partitions = defs.resolve_assets_def("carbon_intensity").partitions_def
    assert isinstance(partitions, dg.MultiPartitionsDefinition)
    with dg.partition_loading_context(effective_dt=now):
        return partitions.get_partitions_def_for_dimension("time").get_partition_keys()


def test_local_deployment_uses_the_simulator_and_files_and_says_so() -> None:
    defs = _defs({"DAGSTER_HOME": "/tmp/carbon-home"})
    resources = defs.resources or {}
    assert isinstance(resources["watttime"], SimulatedWattTimeResource)
    assert isinstance(resources["point_sink"], LineProtocolFileSink)
    assert resources["point_sink"].directory == "/tmp/carbon-home/line_protocol"
    spec = defs.resolve_assets_def("carbon_intensity").specs_by_key[dg.AssetKey("carbon_intensity")]
    assert spec.description.startswith("SIMULATED DATA")
    assert spec.tags["data"] == "simulated"


def test_prod_deployment_uses_envvars_for_secrets() -> None:
    resources = _defs(PROD_ENV).resources or {}
    sink = resources["point_sink"]
    assert isinstance(sink, InfluxDBResource)
    assert sink.host == "https://influx.internal:8181"
    assert "real-token" not in repr(sink) and "S3cret-Pass!" not in repr(resources["watttime"])
    assert isinstance(sink.token, dg.EnvVar) and sink.token.env_var_name == "INFLUXDB_TOKEN"
    watttime = resources["watttime"]
    assert isinstance(watttime.password, dg.EnvVar) and watttime.password.env_var_name == "WATTTIME_PASSWORD"


def test_asset_has_partitions_backfill_policy_and_blocking_check() -> None:
    defs = _defs(PROD_ENV)
    asset = defs.resolve_assets_def("carbon_intensity")
    partitions = asset.partitions_def
    assert isinstance(partitions, dg.MultiPartitionsDefinition)
    assert partitions.get_partitions_def_for_dimension("region").get_partition_keys() == ["CAISO_NORTH", "PJM_DC"]
    assert asset.backfill_policy == dg.BackfillPolicy.single_run()
    (check,) = asset.check_specs
    assert check.name == "watttime_data_valid" and check.blocking
    assert asset.specs_by_key[asset.key].description
    assert defs.resolve_job_def(JOB_NAME).executor_def.name == "in_process"


def test_schedule_requests_the_just_closed_interval_for_every_region_as_one_run_keyed_by_interval() -> None:
    defs = _defs(PROD_ENV)
    schedule = defs.resolve_schedule_def("carbon_intensity_every_15_minutes")
    assert schedule.cron_schedule == "5,20,35,50 * * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    # The instance holds no watttime_access read yet, so every configured region is requested.
    (request,) = tick_requests(defs, schedule.name, datetime(2026, 3, 8, 10, 5, tzinfo=UTC))
    assert request.run_key == "2026-03-08-09:45" and request.partition_key is None
    assert {
        "dagster/asset_partition_range_start": "CAISO_NORTH|2026-03-08-09:45",
        "dagster/asset_partition_range_end": "PJM_DC|2026-03-08-09:45",
        "carbon/interval": "2026-03-08-09:45",
    }.items() <= request.tags.items()


def test_the_index_schedule_requests_the_interval_under_way_for_every_region_as_its_own_job() -> None:
    defs = _defs(PROD_ENV)
    schedule = defs.resolve_schedule_def("carbon_signal_index_every_15_minutes")
    assert schedule.cron_schedule == "1,16,31,46 * * * *" and schedule.job_name == INDEX_JOB_NAME
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    # The instance holds no watttime_access read yet, so every configured region is requested.
    (request,) = tick_requests(defs, schedule.name, datetime(2026, 3, 8, 10, 1, tzinfo=UTC))
    assert request.run_key == "2026-03-08-10:00"
    assert {
        "dagster/asset_partition_range_start": "CAISO_NORTH|2026-03-08-10:00",
        "dagster/asset_partition_range_end": "PJM_DC|2026-03-08-10:00",
    }.items() <= request.tags.items()
    assert defs.resolve_job_def(INDEX_JOB_NAME).tags["carbon/asset"] == "carbon_signal_index"
    delayed = _defs(PROD_ENV | {"CARBON_INDEX_DELAY_MINUTES": "4"})
    assert delayed.resolve_schedule_def("carbon_signal_index_every_15_minutes").cron_schedule == "4,19,34,49 * * * *"


def test_the_local_index_is_marked_simulated() -> None:
    spec = _defs({}).resolve_assets_def("carbon_signal_index").specs_by_key[dg.AssetKey("carbon_signal_index")]
    assert spec.description.startswith("SIMULATED DATA") and spec.tags["data"] == "simulated"


@pytest.mark.parametrize("delay", ["0", "14"])
def test_schedule_delay_is_configurable(delay: str) -> None:
    schedule = _defs(PROD_ENV | {"CARBON_SCHEDULE_DELAY_MINUTES": delay}).resolve_schedule_def(
        "carbon_intensity_every_15_minutes"
    )
    assert schedule.cron_schedule.split(" ")[0].split(",")[0] == delay


def test_local_deployment_materializes_simulated_points_into_files(tmp_path: Path) -> None:
    defs = _defs(LOCAL_2025 | {"CARBON_LINE_PROTOCOL_DIR": str(tmp_path)})
    # the embedded simulator gets a random password per run: there is none to configure
    assert "password" not in type(defs.resources["watttime"]).model_fields
    job = defs.resolve_job_def(JOB_NAME)
    result = job.execute_in_process(partition_key="CAISO_NORTH|2025-01-01-00:00")
    assert result.success
    (day_file,) = (tmp_path / "carbon_intensity").glob("*.lp")
    lines = day_file.read_text().splitlines()
    assert day_file.name == "2025-01-01.lp" and len(lines) == 3
    assert all(line.startswith("carbon_intensity,region=CAISO_NORTH,grid_operator=CAISO,") for line in lines)
    assert all(",source=simulator " in line for line in lines)
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["data_source"].value.startswith("SIMULATED")
    assert str(tmp_path) in metadata["destination"].value


def test_rematerializing_locally_replaces_lines_instead_of_appending(tmp_path: Path) -> None:
    job = _defs(LOCAL_2025 | {"CARBON_LINE_PROTOCOL_DIR": str(tmp_path)}).resolve_job_def(JOB_NAME)
    for _ in range(2):
        assert job.execute_in_process(partition_key="CAISO_NORTH|2025-01-01-00:00").success
    assert job.execute_in_process(partition_key="CAISO_NORTH|2025-01-01-00:15").success
    lines = (tmp_path / "carbon_intensity" / "2025-01-01.lp").read_text().splitlines()
    assert len(lines) == 6 == len(set(lines))
    assert [int(line.rsplit(" ", 1)[1]) for line in lines] == sorted(int(line.rsplit(" ", 1)[1]) for line in lines)


def test_sensors_run_by_default_and_the_job_leaves_freshness_to_its_sensor() -> None:
    defs = _defs(PROD_ENV)
    sensors = {name: defs.resolve_sensor_def(name) for name in (ALERTS, GAP_FILLER, FRESHNESS)}
    assert all(sensor.default_status == dg.DefaultSensorStatus.RUNNING for sensor in sensors.values())
    assert sensors[GAP_FILLER].job_name == JOB_NAME
    checks = {check.name for check in defs.resolve_asset_graph().asset_check_keys}
    assert checks == {VALID_DATA_CHECK, CHECK_NAME, VALID_FORECAST_CHECK, VALID_INDEX_CHECK}
    job_checks = defs.resolve_job_def(JOB_NAME).asset_layer.asset_graph.asset_check_keys
    assert {check.name for check in job_checks} == {VALID_DATA_CHECK}
    assert isinstance(defs.resources["alert_notifier"], AlertNotifier)


def test_no_run_is_requested_before_the_first_interval_closes() -> None:
    defs = _defs(PROD_ENV | {"CARBON_PARTITIONS_START": "2026-03-08"})
    schedule = defs.resolve_schedule_def("carbon_intensity_every_15_minutes")
    context = dg.build_schedule_context(
        repository_def=defs.get_repository_def(), scheduled_execution_time=datetime(2026, 3, 8, 0, 5, tzinfo=UTC)
    )
    assert schedule.evaluate_tick(context).run_requests == []


def test_prod_refuses_an_influxdb_host_that_is_not_a_url_naming_the_variable() -> None:
    with pytest.raises(ConfigurationError, match=r"^INFLUXDB_HOST: ") as raised:
        _defs(PROD_ENV | {"INFLUXDB_HOST": "influxdb:8086"})
    assert "real-token" not in str(raised.value)


def test_a_newcomer_sees_four_weeks_of_intervals_not_years() -> None:
    now = datetime(2026, 12, 3, 8, 10, tzinfo=UTC)
    keys = _interval_keys(_defs({}, now), now)
    assert keys[0] == "2026-11-05-00:00"
    assert keys[-1] == "2026-12-03-07:45"
    assert len(keys) == 28 * 96 + 32  # four weeks and today's closed intervals, not 67,000


def test_a_rolling_window_starts_at_utc_midnight_n_days_back() -> None:
    now = datetime(2026, 3, 8, 23, 59, tzinfo=UTC)
    keys = _interval_keys(_defs(PROD_ENV | {"CARBON_PARTITIONS_START": "400d"}, now), now)
    assert keys[0] == "2025-02-01-00:00"
    assert len(keys) == 400 * 96 + 95


def test_importing_the_definitions_reads_no_environment(tmp_path: Path) -> None:
    """Only loading them does: a broken environment fails ``defs()``, not the import of the module."""
    script = (
        "import carbon_pipeline.definitions as definitions\n"
        "print('imported', definitions.JOB_NAME, flush=True)\n"
        "definitions.defs()\n"
    )
    env = {"PATH": os.environ["PATH"], "CARBON_REGIONS": "caiso-north", "DAGSTER_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=240, check=False
    )
    assert done.stdout == f"imported {JOB_NAME}\n"
    assert done.returncode != 0 and "ConfigurationError: CARBON_REGIONS: Invalid WattTime region" in done.stderr
