"""The parts an end-to-end benchmark runs against: the WattTime simulator as its own process, a real
InfluxDB behind the v3 write API, and a Dagster home configured as a deployment (embedded SQLite or
PostgreSQL), with the environment a production deployment would have.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import dagster as dg

from benchmarks.data_path import TOKEN, simulator_process
from carbon_pipeline.assets.carbon_intensity import WATTTIME_POOL
from carbon_pipeline.definitions import FORECAST_GAP_FILLER
from carbon_pipeline.sensors.gap_filler import SENSOR_NAME as GAP_FILLER
from carbon_pipeline.sinks.line_protocol import MEASUREMENT
from carbon_pipeline.watttime.simulator import SIMULATOR_PASSWORD, SIMULATOR_USERNAME
from carbon_pipeline_tests.support.dagster_dev import REPO
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.support.influxdb_shim import InfluxDBShim
from carbon_pipeline_tests.support.postgres_server import PostgresServer

Storage = Literal["sqlite", "postgres"]
DATABASE = "benchmark"
PARTITIONS_START = "2025-01-01"
# Variables a deployment reads; the benchmark's own environment must not leak into the deployment's.
DEPLOYMENT_PREFIXES = ("DAGSTER_", "CARBON_", "WATTTIME_", "INFLUXDB_")
GAP_FILLERS = (GAP_FILLER, FORECAST_GAP_FILLER)


@dataclass(frozen=True)
class Services:
    watttime_url: str
    influxdb: InfluxDBServer
    influxdb_write_url: str

    def points(self, where: str, measurement: str = MEASUREMENT, field: str = "moer_lbs_per_mwh") -> int:
        """Points of ``measurement`` (those with ``field``) in InfluxDB matching ``where``."""
        rows = self.influxdb.query(f"SELECT count({field}) FROM {measurement} WHERE {where}", DATABASE)
        return int(rows[0]["count"]) if rows else 0


@contextmanager
def services(latency_seconds: float, synthetic_regions: int = 0) -> Iterator[Services]:
    with (
        simulator_process(latency_seconds, synthetic_regions) as watttime_url,
        InfluxDBServer() as influxdb,
        InfluxDBShim(influxdb.url, TOKEN) as shim,
    ):
        influxdb.create_database(DATABASE)
        yield Services(watttime_url, influxdb, shim.url)


@contextmanager
def dagster_home(workdir: Path, storage: Storage) -> Iterator[tuple[Path, dict[str, str]]]:
    """A DAGSTER_HOME with the repository's instance file for ``storage``, and the variables it reads."""
    home = workdir / f"dagster_home_{storage}"
    home.mkdir(parents=True)
    with ExitStack() as stack:
        if storage == "sqlite":
            shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
            yield home, {}
            return
        server = stack.enter_context(PostgresServer())
        shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
        yield (
            home,
            {
                "DAGSTER_PG_HOST": server.host,
                "DAGSTER_PG_PORT": str(server.port),
                "DAGSTER_PG_USERNAME": server.user,
                "DAGSTER_PG_PASSWORD": server.password,
                "DAGSTER_PG_DB": server.database,
            },
        )


@contextmanager
def instance_in(home: Path, instance_env: Mapping[str, str] | None = None) -> Iterator[dg.DagsterInstance]:
    """The instance of ``home`` opened as Dagster's tools open it, through DAGSTER_HOME and the variables
    its instance file reads (``instance_env``, as ``dagster_home`` gives them); all restored afterwards."""
    variables = {"DAGSTER_HOME": str(home), **(instance_env or {})}
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        with dg.DagsterInstance.get() as instance:
            yield instance
    finally:
        for name, value in saved.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value


def deployment_env(
    services: Services, home: Path, instance_env: Mapping[str, str], regions: str, **settings: str
) -> dict[str, str]:
    """A production deployment's environment whose WattTime and InfluxDB are the benchmark's."""
    inherited = {key: value for key, value in os.environ.items() if not key.startswith(DEPLOYMENT_PREFIXES)}
    return {
        **inherited,
        **instance_env,
        "DAGSTER_HOME": str(home),
        "DAGSTER_DEPLOYMENT": "prod",
        "CARBON_REGIONS": regions,
        "CARBON_PARTITIONS_START": PARTITIONS_START,
        "WATTTIME_USERNAME": SIMULATOR_USERNAME,
        "WATTTIME_PASSWORD": SIMULATOR_PASSWORD,
        "WATTTIME_BASE_URL": services.watttime_url,
        "INFLUXDB_HOST": services.influxdb_write_url,
        "INFLUXDB_TOKEN": TOKEN,
        "INFLUXDB_DATABASE": DATABASE,
        **settings,
    }


def stop_gap_fillers(env: Mapping[str, str], names: Sequence[str] = GAP_FILLERS) -> None:
    """Stop gap-filling sensors (both by default) before the daemon starts: each would add runs of its own
    asset to a measurement (a week of every region by default). One ``dagster sensor stop`` each, as a user would."""
    for name in names:
        dagster_cli(env, "sensor", "stop", name, "-w", str(REPO / "workspace.yaml"))


def set_pool_limit(env: Mapping[str, str], limit: int, pool: str = WATTTIME_POOL) -> None:
    """``dagster instance concurrency set``: how many steps of ``pool`` may run at once on the instance.

    At 0 the run queue holds every run whose steps are all in the pool (every asset's), as it holds a
    run that would find no slot free; raising it lets the queue start them.
    """
    dagster_cli(env, "instance", "concurrency", "set", pool, str(limit))


def dagster_cli(env: Mapping[str, str], *arguments: str) -> None:
    """The ``dagster`` command on the deployment's instance, as an operator types it."""
    dagster = Path(sys.executable).parent / "dagster"
    subprocess.run([str(dagster), *arguments], env=dict(env), cwd=env["DAGSTER_HOME"], check=True, capture_output=True)
