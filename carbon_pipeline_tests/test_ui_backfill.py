"""Under `dagster dev` (webserver + daemon), prod settings: a month's backfill launched as the asset page does,
and the gap-filling sensor filling the last week on its own, as the daemon runs it."""

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

from carbon_pipeline.partitions import INTERVAL, interval_start
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

GAP_FILL_RUNS = """
{
  runsOrError(filter: {tags: [{key: "carbon/trigger", value: "gap_fill"}]}) {
    ... on Runs { results { runId status tags { key value } } }
  }
}"""
JANUARY = "time >= '2025-01-01T00:00:00Z' AND time < '2025-02-01T00:00:00Z'"

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


def test_month_backfill_is_one_run_with_two_watttime_calls_and_the_last_week_fills_itself(
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
    january = [query for query in simulator.state.stats()["historical_queries"] if query["start"].startswith("2025-01")]
    assert len(january) == 2
    rows = influxdb_server.query(
        f"SELECT count(moer_lbs_per_mwh) FROM carbon_intensity WHERE {JANUARY}", influxdb_database
    )
    assert rows[0]["count"] == 31 * 288

    gap_fill = _wait_for_gap_fill(webserver)
    assert gap_fill["status"] == "SUCCESS"
    tags = {tag["key"]: tag["value"] for tag in gap_fill["tags"]}  # type: ignore[attr-defined]
    first, last = (
        interval_start(tags[f"dagster/asset_partition_range_{end}"].split("|")[1]) for end in ("start", "end")
    )
    assert first >= datetime.now(UTC) - timedelta(days=7, minutes=15)
    window = f"time >= '{first:%Y-%m-%dT%H:%M:%SZ}' AND time < '{last + INTERVAL:%Y-%m-%dT%H:%M:%SZ}'"
    rows = influxdb_server.query(
        f"SELECT count(moer_lbs_per_mwh) FROM carbon_intensity WHERE {window}", influxdb_database
    )
    assert rows[0]["count"] == 3 * ((last - first) // INTERVAL + 1)


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


def _wait_for_gap_fill(url: str) -> dict[str, object]:
    """The first finished run the gap-filling sensor requested through the daemon."""
    deadline = time.monotonic() + BACKFILL_TIMEOUT
    while time.monotonic() < deadline:
        runs = _graphql(url, GAP_FILL_RUNS, {})["runsOrError"]["results"]  # type: ignore[index]
        finished = [run for run in runs if run["status"] in ("SUCCESS", "FAILURE", "CANCELED")]
        if finished:
            return finished[0]  # type: ignore[no-any-return]
        time.sleep(2)
    raise AssertionError(f"no gap-filling run finished in {BACKFILL_TIMEOUT} s")
