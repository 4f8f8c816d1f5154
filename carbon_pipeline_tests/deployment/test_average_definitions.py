"""Electricity Maps in the code location: nothing without zones, and with them its asset, job, schedule,
gap filler and resource per deployment, from settings checked at load."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from carbon_pipeline.definitions import AVERAGE_GAP_FILLER, AVERAGE_JOB_NAME, build_definitions
from carbon_pipeline.electricitymaps.resource import ElectricityMapsResource
from carbon_pipeline.electricitymaps.simulated import SimulatedElectricityMapsResource
from carbon_pipeline.schedules import AVERAGE_SCHEDULE_NAME
from carbon_pipeline.settings import ConfigurationError, PipelineSettings
from carbon_pipeline_tests.support.schedule_ticks import tick_requests

PROD_ENV = {
    "DAGSTER_DEPLOYMENT": "prod",
    "WATTTIME_USERNAME": "grid-user",
    "WATTTIME_PASSWORD": "S3cret-Pass!",
    "INFLUXDB_HOST": "https://influx.internal:8181",
    "INFLUXDB_TOKEN": "real-token",
    "INFLUXDB_DATABASE": "carbon",
}
ZONES = {"CARBON_ELECTRICITYMAPS_ZONES": "DE,FR"}
ASSET = "average_carbon_intensity"


def _defs(env: dict[str, str]) -> dg.Definitions:
    return build_definitions(PipelineSettings.from_env(env))


@pytest.mark.parametrize("env", [{}, PROD_ENV], ids=["local", "prod"])
def test_without_zones_nothing_of_electricity_maps_is_defined(env: dict[str, str]) -> None:
    repository = _defs(env).get_repository_def()
    names = {key.to_user_string() for key in repository.asset_graph.get_all_asset_keys()}
    assert ASSET not in names
    assert not repository.has_job(AVERAGE_JOB_NAME)
    assert AVERAGE_SCHEDULE_NAME not in {schedule.name for schedule in repository.schedule_defs}
    assert AVERAGE_GAP_FILLER not in {sensor.name for sensor in repository.sensor_defs}
    assert "electricitymaps" not in (_defs(env).resources or {})


def test_local_zones_get_the_simulated_twin_and_an_asset_marked_simulated() -> None:
    defs = _defs(ZONES | {"CARBON_ELECTRICITYMAPS_EMISSION_FACTOR": "direct"})
    resource = (defs.resources or {})["electricitymaps"]
    assert isinstance(resource, SimulatedElectricityMapsResource) and resource.emission_factor_type == "direct"
    asset = defs.resolve_assets_def(ASSET)
    spec = asset.specs_by_key[asset.key]
    assert spec.description.startswith("SIMULATED DATA") and spec.tags["data"] == "simulated"
    partitions = asset.partitions_def
    assert isinstance(partitions, dg.MultiPartitionsDefinition)
    assert partitions.get_partitions_def_for_dimension("region").get_partition_keys() == ["DE", "FR"]
    assert defs.resolve_job_def(AVERAGE_JOB_NAME).tags["carbon/asset"] == ASSET
    assert defs.resolve_sensor_def(AVERAGE_GAP_FILLER).default_status == dg.DefaultSensorStatus.RUNNING


def test_prod_zones_read_the_token_through_an_envvar_and_need_it_set() -> None:
    resource = (_defs(PROD_ENV | ZONES | {"ELECTRICITYMAPS_API_TOKEN": "em-secret"}).resources or {})["electricitymaps"]
    assert isinstance(resource, ElectricityMapsResource)
    assert isinstance(resource.api_token, dg.EnvVar) and resource.api_token.env_var_name == "ELECTRICITYMAPS_API_TOKEN"
    assert "em-secret" not in repr(resource)
    with pytest.raises(ConfigurationError, match="ELECTRICITYMAPS_API_TOKEN"):
        PipelineSettings.from_env(PROD_ENV | ZONES)


def test_the_schedule_requests_the_hour_that_just_closed_for_every_zone_as_one_run_keyed_by_the_hour() -> None:
    defs = _defs(ZONES | {"CARBON_PARTITIONS_START": "2026-01-01"})
    schedule = defs.resolve_schedule_def(AVERAGE_SCHEDULE_NAME)
    assert schedule.cron_schedule == "5 * * * *" and schedule.job_name == AVERAGE_JOB_NAME
    (request,) = tick_requests(defs, AVERAGE_SCHEDULE_NAME, datetime(2026, 3, 8, 10, 5, tzinfo=UTC))
    hour = "2026-03-08-09:00"
    assert request.run_key == hour
    assert {
        "dagster/asset_partition_range_start": f"DE|{hour}",
        "dagster/asset_partition_range_end": f"FR|{hour}",
    }.items() <= request.tags.items()


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("CARBON_ELECTRICITYMAPS_ZONES", "DE,de", "zone 'de' is not an Electricity Maps zone key"),
        ("CARBON_ELECTRICITYMAPS_ZONES", "DE,DE", "a zone is listed twice"),
        ("CARBON_ELECTRICITYMAPS_EMISSION_FACTOR", "marginal", "expected lifecycle"),
        ("CARBON_ELECTRICITYMAPS_HISTORY_HOURS", "0", "24 on the free tier"),
    ],
)
def test_a_bad_electricity_maps_setting_fails_the_load_naming_its_variable(
    variable: str, value: str, named: str
) -> None:
    with pytest.raises(ConfigurationError) as error:
        PipelineSettings.from_env({variable: value})
    assert variable in str(error.value) and named in str(error.value)
