"""What the asset tests share: the assets' resources against the simulators and real InfluxDB, and an instance."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pytest

from carbon_pipeline.electricitymaps.simulator import ElectricityMapsSimulator, SimulatorConfig
from carbon_pipeline.watttime.simulator import SimulatorServer
from carbon_pipeline_tests.support.electricitymaps_rig import ElectricityMapsRig
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.support.influxdb_shim import InfluxDBShim
from carbon_pipeline_tests.support.pipeline_harness import influxdb_resource, watttime_resource


@pytest.fixture
def resources(simulator: SimulatorServer, influxdb_shim: InfluxDBShim, influxdb_database: str) -> dict[str, object]:
    return {
        "watttime": watttime_resource(simulator.base_url),
        "point_sink": influxdb_resource(influxdb_shim.url, influxdb_database),
    }


@pytest.fixture
def rig(
    influxdb_server: InfluxDBServer, influxdb_shim: InfluxDBShim, influxdb_database: str
) -> Iterator[ElectricityMapsRig]:
    """The Electricity Maps simulator (default plans) and a fresh database, for the Electricity Maps assets."""
    with ElectricityMapsSimulator(SimulatorConfig()) as simulator:
        yield ElectricityMapsRig(simulator, influxdb_server, influxdb_shim, influxdb_database)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance
