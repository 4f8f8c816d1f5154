"""A month's backfill launched as the asset page does: `dagster dev` (webserver + daemon), GraphQL, prod settings."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from carbon_pipeline.simulator import SimulatorServer
from carbon_pipeline_tests.influxdb_server import InfluxDBServer, free_loopback_port
from carbon_pipeline_tests.pipeline_harness import REPO

READY_TIMEOUT = 120
BACKFILL_TIMEOUT = 300

LAUNCH = """
mutation ($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}"""
STATUS = """
query ($id: String!) {
  partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status } }
  runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) {
    ... on Runs { results { runId status } }
  }
}"""

# ##### FIXTURES


@pytest.fixture
def webserver(tmp_path: Path, dagster_home: Path, prod_env: dict[str, str]) -> Iterator[str]:
    port = free_loopback_port()
    command = [str(Path(sys.executable).parent / "dagster"), "dev", "-w", str(REPO / "workspace.yaml"), "-p", str(port)]
    with (tmp_path / "dagster_dev.log").open("w") as log:
        process = subprocess.Popen(
            command, cwd=dagster_home, env=prod_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        url = f"http://127.0.0.1:{port}/graphql"
        try:
            _wait_until_ready(url, process)
            yield url
        finally:
            os.killpg(process.pid, 15)
            process.wait(timeout=60)


def _wait_until_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, "dagster dev exited"
        try:
            if httpx.post(url, json={"query": "{ version }"}, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError("dagster dev did not answer in time")


def _graphql(url: str, query: str, variables: dict[str, object]) -> dict[str, object]:
    response = httpx.post(url, json={"query": query, "variables": variables}, timeout=60)
    response.raise_for_status()
    return response.json()["data"]


# ##### TESTS


def test_month_backfill_from_the_asset_page_is_one_run_with_two_watttime_calls(
    webserver: str, simulator: SimulatorServer, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    keys = [f"CAISO_NORTH|{(start + timedelta(minutes=15 * n)):%Y-%m-%d-%H:%M}" for n in range(31 * 96)]
    params = {"partitionNames": keys, "assetSelection": [{"path": ["carbon_intensity"]}], "fromFailure": False}
    launched = _graphql(webserver, LAUNCH, {"params": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    status = _wait_for_backfill(webserver, launched["backfillId"])

    assert status["partitionBackfillOrError"]["status"] == "COMPLETED_SUCCESS"
    assert [run["status"] for run in status["runsOrError"]["results"]] == ["SUCCESS"]
    assert simulator.state.stats()["requests"]["/v3/historical"] == 2
    rows = influxdb_server.query("SELECT count(moer_lbs_per_mwh) FROM carbon_intensity", influxdb_database)
    assert rows[0]["count"] == 31 * 288


def _wait_for_backfill(url: str, backfill_id: str) -> dict[str, dict[str, object]]:
    deadline = time.monotonic() + BACKFILL_TIMEOUT
    while time.monotonic() < deadline:
        status = _graphql(url, STATUS, {"id": backfill_id})
        if status["partitionBackfillOrError"]["status"] in (
            "COMPLETED_SUCCESS",
            "COMPLETED_FAILED",
            "FAILED",
            "CANCELED",
        ):
            return status  # type: ignore[return-value]
        time.sleep(2)
    raise AssertionError(f"backfill {backfill_id} did not finish in {BACKFILL_TIMEOUT} s")
