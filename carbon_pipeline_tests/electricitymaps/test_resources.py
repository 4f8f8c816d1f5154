"""The Electricity Maps resources inside real Dagster runs: the real one takes its token from the environment
at launch (never from config), the simulated one serves its own simulator for the run and stops it after."""

from __future__ import annotations

import threading

import dagster as dg
import pytest

from carbon_pipeline.deployments import electricitymaps_resources
from carbon_pipeline.electricitymaps.resource import ElectricityMapsResource, ElectricityMapsSource
from carbon_pipeline.electricitymaps.simulated import SimulatedElectricityMapsResource
from carbon_pipeline.electricitymaps.simulator import PAID_TOKEN, ElectricityMapsSimulator
from carbon_pipeline.settings import PipelineSettings
from carbon_pipeline.settings_electricitymaps import (
    ELECTRICITYMAPS_API_TOKEN_VARIABLE,
    ELECTRICITYMAPS_BASE_URL_VARIABLE,
    REQUESTS_PER_SECOND_VARIABLE,
    ZONES_VARIABLE,
)

# What production needs besides Electricity Maps; only the settings read them here.
PRODUCTION_ENV = {
    "DAGSTER_DEPLOYMENT": "prod",
    "WATTTIME_USERNAME": "watttime-user",
    "WATTTIME_PASSWORD": "watttime-password-unused",
    "INFLUXDB_HOST": "http://127.0.0.1:9",
    "INFLUXDB_TOKEN": "influxdb-token-unused",
    "INFLUXDB_DATABASE": "carbon",
}


@dg.asset
def french_history(electricitymaps: ElectricityMapsSource) -> tuple[int, str]:
    """How many points the run's client read, and from which source."""
    return len(electricitymaps.get_client().history("FR")), electricitymaps.source_name


def _materialize(resource: ElectricityMapsSource) -> tuple[int, str]:
    result = dg.materialize([french_history], resources={"electricitymaps": resource})
    assert result.success
    value: tuple[int, str] = result.output_for_node("french_history")
    return value


def test_real_resource_reads_its_token_from_the_environment(
    sim: ElectricityMapsSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The production resource takes its base URL and rate from the settings; its token only at launch."""
    monkeypatch.setenv(ELECTRICITYMAPS_API_TOKEN_VARIABLE, PAID_TOKEN)
    env = PRODUCTION_ENV | {
        ELECTRICITYMAPS_API_TOKEN_VARIABLE: PAID_TOKEN,
        ZONES_VARIABLE: "FR",
        ELECTRICITYMAPS_BASE_URL_VARIABLE: sim.api_url,
        REQUESTS_PER_SECOND_VARIABLE: "50",
    }
    resource = electricitymaps_resources(PipelineSettings.from_env(env))["electricitymaps"]
    assert isinstance(resource, ElectricityMapsResource)
    assert PAID_TOKEN not in repr(resource) and resource.requests_per_second == 50
    assert _materialize(resource) == (24, "electricitymaps")
    assert sim.state.stats()["requests"] == {"/carbon-intensity/history": 1}


def test_simulated_resource_serves_a_simulator_for_the_run_only() -> None:
    resource = SimulatedElectricityMapsResource()
    assert _materialize(resource) == (24, "simulator")
    assert "electricitymaps-simulator" not in {thread.name for thread in threading.enumerate()}
