"""Electricity Maps' forecast in the code location: off unless the plan is said to serve it, then its asset, job
and hourly schedule of the hour under way, from settings checked at load."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from carbon_pipeline.assets.average_carbon_forecast import ASSET_NAME
from carbon_pipeline.definitions import AVERAGE_FORECAST_JOB_NAME, build_definitions
from carbon_pipeline.schedules import AVERAGE_FORECAST_SCHEDULE_NAME
from carbon_pipeline.settings import ConfigurationError, PipelineSettings
from carbon_pipeline_tests.support.schedule_ticks import tick_requests

ZONES = {"CARBON_ELECTRICITYMAPS_ZONES": "DE,FR"}
FORECAST = {"CARBON_ELECTRICITYMAPS_FORECAST": "true"}


def _defs(env: dict[str, str]) -> dg.Definitions:
    return build_definitions(PipelineSettings.from_env(env))


@pytest.mark.parametrize("env", [ZONES, ZONES | {"CARBON_ELECTRICITYMAPS_FORECAST": "false"}, FORECAST])
def test_without_the_setting_or_without_zones_no_forecast_is_defined(env: dict[str, str]) -> None:
    repository = _defs(env).get_repository_def()
    assert ASSET_NAME not in {key.to_user_string() for key in repository.asset_graph.get_all_asset_keys()}
    assert not repository.has_job(AVERAGE_FORECAST_JOB_NAME)
    assert AVERAGE_FORECAST_SCHEDULE_NAME not in {schedule.name for schedule in repository.schedule_defs}


def test_the_schedule_requests_the_hour_under_way_for_every_zone_as_one_run() -> None:
    defs = _defs(ZONES | FORECAST | {"CARBON_PARTITIONS_START": "2026-01-01"})
    spec = defs.resolve_assets_def(ASSET_NAME).specs_by_key[dg.AssetKey(ASSET_NAME)]
    assert spec.tags["data"] == "simulated"
    schedule = defs.resolve_schedule_def(AVERAGE_FORECAST_SCHEDULE_NAME)
    assert schedule.cron_schedule == "2 * * * *" and schedule.job_name == AVERAGE_FORECAST_JOB_NAME
    (request,) = tick_requests(defs, AVERAGE_FORECAST_SCHEDULE_NAME, datetime(2026, 3, 8, 10, 2, tzinfo=UTC))
    assert request.run_key == "2026-03-08-10:00"
    assert {
        "dagster/asset_partition_range_start": "DE|2026-03-08-10:00",
        "dagster/asset_partition_range_end": "FR|2026-03-08-10:00",
    }.items() <= request.tags.items()


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"CARBON_ELECTRICITYMAPS_FORECAST": "maybe"}, "CARBON_ELECTRICITYMAPS_FORECAST='maybe': expected true"),
        ({"CARBON_ELECTRICITYMAPS_FORECAST_HOURS": "73"}, "CARBON_ELECTRICITYMAPS_FORECAST_HOURS='73'"),
        (
            ZONES | FORECAST | {"CARBON_ELECTRICITYMAPS_FORECAST_HOURS": "3"},
            "window(s) of 4 h do not fit in the 3 h forecast (CARBON_ELECTRICITYMAPS_FORECAST_HOURS)",
        ),
    ],
)
def test_a_bad_forecast_setting_fails_the_load_naming_its_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named.replace("(", r"\(").replace(")", r"\)")):
        PipelineSettings.from_env(env)
