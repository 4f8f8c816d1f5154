"""The commands a user runs: the Dagster CLI on the prod deployment (against loopback fakes) and `make demo`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest

from carbon_pipeline.cli import main
from carbon_pipeline.definitions import JOB_NAME, build_definitions
from carbon_pipeline.demo import demo_intervals
from carbon_pipeline.settings import PipelineSettings
from carbon_pipeline.watttime.simulator import SIMULATOR_PASSWORD, SimulatorServer
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.support.pipeline_harness import REPO
from carbon_pipeline_tests.support.processes import free_loopback_port

DAGSTER = str(Path(sys.executable).parent / "dagster")
MODULE = ["-m", "carbon_pipeline.definitions"]
COMMAND_TIMEOUT = 240

# ##### HELPERS


def _run(args: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, env=dict(env), cwd=REPO, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
    )


def _materialize(partition_option: str, partitions: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return _run(
        [DAGSTER, "asset", "materialize", *MODULE, "--select", "carbon_intensity", partition_option, partitions], env
    )


def _count(server: InfluxDBServer, database: str) -> int:
    rows = server.query("SELECT count(moer_lbs_per_mwh) FROM carbon_intensity", database)
    return rows[0]["count"] if rows else 0


# ##### TESTS


@pytest.mark.slow
def test_cli_materializes_one_partition(
    prod_env: dict[str, str], influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    done = _materialize("--partition", "CAISO_NORTH|2025-01-01-00:00", prod_env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _count(influxdb_server, influxdb_database) == 3
    output = done.stdout + done.stderr
    assert SIMULATOR_PASSWORD not in output and "test-token" not in output


@pytest.mark.slow
def test_cli_materializes_a_day_range_in_one_run_and_one_call(
    prod_env: dict[str, str], simulator: SimulatorServer, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    partition_range = "CAISO_NORTH|2025-01-01-00:00...CAISO_NORTH|2025-01-01-23:45"
    done = _materialize("--partition-range", partition_range, prod_env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _count(influxdb_server, influxdb_database) == 288
    assert simulator.state.stats()["requests"]["/v3/historical"] == 1


@pytest.mark.parametrize("deployment", ["local", "prod"])
def test_definitions_validate(deployment: str, prod_env: dict[str, str]) -> None:
    done = _run([DAGSTER, "definitions", "validate", *MODULE], prod_env | {"DAGSTER_DEPLOYMENT": deployment})
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("INFLUXDB_TOKEN", ""),
        ("WATTTIME_PASSWORD", "changeme"),
        ("INFLUXDB_HOST", "influxdb:8086"),
        ("INFLUXDB_WRITE_API", "v1"),
    ],
)
def test_prod_refuses_to_load_naming_the_bad_variable(variable: str, value: str, prod_env: dict[str, str]) -> None:
    done = _run([DAGSTER, "definitions", "validate", *MODULE], prod_env | {variable: value})
    assert done.returncode != 0
    assert variable in done.stdout + done.stderr
    assert SIMULATOR_PASSWORD not in done.stdout + done.stderr


@pytest.mark.slow
def test_make_demo_materializes_every_asset_into_files_and_names_the_next_cleanest_window(tmp_path: Path) -> None:
    home = tmp_path / "demo_home"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DAGSTER_", "CARBON_", "MAKE"))}
    done = _run(["make", "--no-print-directory", "demo", f"DAGSTER_HOME={home}"], env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    measured = re.search(r"CAISO_NORTH: (\d+) points for intervals (\S+) to", done.stdout)
    assert measured, done.stdout
    assert "SIMULATED" in done.stdout
    assert re.search(r"CAISO_NORTH: 96 forecasts issued \S+ \(UTC\), 27648 points", done.stdout)
    assert re.search(r"CAISO_NORTH: forecasts of \S+ against what was published: mean absolute error", done.stdout)
    assert re.search(r"CAISO_NORTH: next cleanest 2 h window starts \S+ \S+ UTC, .* \[SIMULATED\]", done.stdout)
    assert re.search(r"revision sweep of the last 7 days: \d+ stored points revised by WattTime", done.stdout)
    assert re.search(
        r"CAISO_NORTH: signal index [\d.]+ of 100 \(0 cleanest\) for CAISO_NORTH\|\S+ \[SIMULATED", done.stdout
    )
    averaged = re.search(r"DE: (\d+) average intensity points for hours \S+ to \S+ \(UTC\) .*\[SIMULATED", done.stdout)
    assert averaged, done.stdout
    assert re.search(
        r"Side by side, the hour \S+ \S+ UTC:\n"
        r"  CAISO_NORTH marginal \(WattTime MOER\): [\d.]+ gCO2/kWh: what one more kWh used now emits.*\[SIMULATED\]\n"
        r"  DE average \(Electricity Maps, lifecycle\): [\d.]+ gCO2eq/kWh: what each kWh consumed emitted"
        r".*\[SIMULATED\]",
        done.stdout,
    )
    lines = {
        measurement: [
            line
            for path in sorted((home / "line_protocol" / measurement).glob("*.lp"))
            for line in path.read_text().splitlines()
        ]
        for measurement in (
            "carbon_intensity",
            "carbon_forecast",
            "carbon_cleanest_window",
            "carbon_forecast_accuracy",
            "carbon_signal_index",
            "average_carbon_intensity",
        )
    }
    assert len(lines["carbon_intensity"]) == int(measured.group(1))
    assert len(lines["carbon_forecast"]) == 97 * 288  # the judged day's 96 issues and the one under way
    assert len(lines["carbon_cleanest_window"]) == 97 * 3
    assert len(lines["carbon_forecast_accuracy"]) == 6  # three lead-time buckets, three window lengths
    assert len(lines["carbon_signal_index"]) == 1  # the interval under way
    assert len(lines["average_carbon_intensity"]) == int(averaged.group(1)) == 23  # the free tier's closed hours
    assert all(line.startswith("average_carbon_intensity,zone=DE,") for line in lines["average_carbon_intensity"])
    assert all(",source=simulator" in line for measurement in lines.values() for line in measurement)


@pytest.mark.parametrize(
    ("partitions_start", "first"),
    [
        (None, datetime(2026, 3, 7, 10, 0, tzinfo=UTC)),  # the local default window holds the whole day
        ("1d", datetime(2026, 3, 7, 10, 0, tzinfo=UTC)),
        ("2026-03-08", datetime(2026, 3, 8, tzinfo=UTC)),  # a window opened today is covered from its start
    ],
)
def test_the_demo_covers_the_last_day_inside_the_partition_window(
    partitions_start: str | None, first: datetime
) -> None:
    now = datetime(2026, 3, 8, 10, 2, tzinfo=UTC)
    env = {} if partitions_start is None else {"CARBON_PARTITIONS_START": partitions_start}
    job = build_definitions(PipelineSettings.from_env(env, now)).resolve_job_def(JOB_NAME)
    assert demo_intervals(job, now) == (first, datetime(2026, 3, 8, 9, 45, tzinfo=UTC))


def test_healthcheck_fails_in_one_line_when_no_code_server_answers(capsys: pytest.CaptureFixture[str]) -> None:
    """The image's HEALTHCHECK before the code server listens (or after it died): a reason, not a traceback.
    The code server that answers with a load error is test_dockerfile.py's."""
    port = free_loopback_port()
    assert main(["healthcheck", "-p", str(port)]) == 1
    assert (
        capsys.readouterr().err == f"carbon-pipeline healthcheck: error: no code server answers at localhost:{port}\n"
    )
