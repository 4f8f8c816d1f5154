"""What the Electricity Maps asset tests run against: the simulator on loopback and a database on the real InfluxDB."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import dagster as dg

from carbon_pipeline.electricitymaps.resource import ElectricityMapsResource
from carbon_pipeline.electricitymaps.simulator import ElectricityMapsSimulator
from carbon_pipeline.partitions import RANGE_END_TAG, RANGE_START_TAG, region_partition_key
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.support.influxdb_shim import InfluxDBShim
from carbon_pipeline_tests.support.pipeline_harness import influxdb_resource
from carbon_pipeline_tests.support.simulator_session import FAST


@dataclass(frozen=True)
class ElectricityMapsRig:
    """The simulator, the InfluxDB server, the shim the sink writes through and a fresh database."""

    simulator: ElectricityMapsSimulator
    influxdb: InfluxDBServer
    shim: InfluxDBShim
    database: str

    def materialize(
        self, asset: dg.AssetsDefinition, token: str, first: tuple[str, datetime], last: tuple[str, datetime]
    ) -> dg.ExecuteInProcessResult:
        """``asset`` from zone and hour ``first`` to ``last`` as one run, with ``token`` on the simulator."""
        resources = {
            "electricitymaps": ElectricityMapsResource(api_token=token, base_url=self.simulator.api_url, **FAST),
            "point_sink": influxdb_resource(self.shim.url, self.database),
        }
        tags = {RANGE_START_TAG: str(region_partition_key(*first)), RANGE_END_TAG: str(region_partition_key(*last))}
        return dg.materialize([asset], resources=resources, tags=tags, raise_on_error=False)

    def rows(self, query: str) -> list[dict[str, object]]:
        return list(self.influxdb.query(query, self.database))

    def requests(self) -> dict[str, int]:
        return dict(self.simulator.state.stats()["requests"])
