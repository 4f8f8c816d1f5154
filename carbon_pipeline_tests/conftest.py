"""Shared pytest fixtures for the carbon-pipeline test suite."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from carbon_pipeline.watttime.simulator import SIMULATOR_PASSWORD, SIMULATOR_USERNAME, SimulatorConfig, SimulatorServer
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.support.influxdb_shim import InfluxDBShim
from carbon_pipeline_tests.support.pipeline_harness import REPO
from carbon_pipeline_tests.support.processes import free_loopback_port
from carbon_pipeline_tests.support.secret_scan import new_sentinel

pytest_plugins = ["carbon_pipeline_tests.support.fault_report", "carbon_pipeline_tests.support.markers", "pytester"]

# Variables the project reads; tests start from an environment without them.
OUR_PREFIXES = ("DAGSTER_", "CARBON_", "WATTTIME_", "INFLUXDB_")

# ##### FIXTURES: InfluxDB


@pytest.fixture(scope="session")
def influxdb_server() -> Iterator[InfluxDBServer]:
    """One real influxd for the whole run: it starts in well under a second but
    per-test processes would still add up; tests isolate via `influxdb_database`."""
    with InfluxDBServer() as server:
        yield server


@pytest.fixture
def influxdb_database(influxdb_server: InfluxDBServer) -> Iterator[str]:
    """Name of a fresh, empty database that is dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    influxdb_server.create_database(name)
    yield name
    influxdb_server.drop_database(name)


@pytest.fixture
def influxdb_shim(influxdb_server: InfluxDBServer) -> Iterator[InfluxDBShim]:
    """InfluxDB 3 write API in front of the session server, demanding the token
    "test-token" (also `shim.token`), with its own port, request log and fault queue per test."""
    with InfluxDBShim(influxdb_server.url, token="test-token") as shim:
        yield shim


# ##### FIXTURES: WattTime simulator and a prod-configured Dagster home


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    """The WattTime simulator on loopback, publishing every point immediately."""
    with SimulatorServer(SimulatorConfig(publication_lag_seconds=0)) as server:
        yield server


@pytest.fixture
def dagster_home(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    return home


@pytest.fixture
def prod_env(
    dagster_home: Path, simulator: SimulatorServer, influxdb_shim: InfluxDBShim, influxdb_database: str
) -> dict[str, str]:
    """The environment of a prod deployment whose WattTime and InfluxDB are the loopback fakes."""
    inherited = {key: value for key, value in os.environ.items() if not key.startswith(OUR_PREFIXES)}
    return inherited | {
        "DAGSTER_HOME": str(dagster_home),
        "DAGSTER_DEPLOYMENT": "prod",
        "CARBON_REGIONS": "CAISO_NORTH",
        "WATTTIME_USERNAME": SIMULATOR_USERNAME,
        "WATTTIME_PASSWORD": SIMULATOR_PASSWORD,
        "WATTTIME_BASE_URL": simulator.base_url,
        "INFLUXDB_HOST": influxdb_shim.url,
        "INFLUXDB_TOKEN": "test-token",
        "INFLUXDB_DATABASE": influxdb_database,
    }


# ##### FIXTURES: sentinel secrets, for the tests that prove no secret leaks


@pytest.fixture
def sentinels() -> dict[str, str]:
    """A value per secret that can only come from this test, so any sighting is a leak.

    The alert webhook's URL is a secret too (Slack's embed a token); nothing listens on it, so
    alert deliveries fail and their error reports are scanned as well. The Electricity Maps token is
    in every process's environment as an operator sets it, whether or not an asset reads it yet."""
    secrets = {name: new_sentinel() for name in ("WATTTIME_PASSWORD", "INFLUXDB_TOKEN", "ELECTRICITYMAPS_API_TOKEN")}
    return secrets | {"ALERT_WEBHOOK_URL": f"http://127.0.0.1:{free_loopback_port()}/hooks/{new_sentinel()}"}


@pytest.fixture
def sentinel_watttime(sentinels: dict[str, str]) -> Iterator[SimulatorServer]:
    config = SimulatorConfig(accounts={SIMULATOR_USERNAME: sentinels["WATTTIME_PASSWORD"]}, publication_lag_seconds=0)
    with SimulatorServer(config) as server:
        yield server


@pytest.fixture
def sentinel_influxdb(influxdb_server: InfluxDBServer, sentinels: dict[str, str]) -> Iterator[InfluxDBShim]:
    with InfluxDBShim(influxdb_server.url, token=sentinels["INFLUXDB_TOKEN"]) as shim:
        yield shim
