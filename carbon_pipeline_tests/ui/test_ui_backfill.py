"""Under `dagster dev` (webserver + daemon), prod settings: a month's backfill launched as the asset page does,
and the gap-filling sensor filling the last week on its own, as the daemon runs it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from carbon_pipeline.partitions import INTERVAL, interval_start
from carbon_pipeline.sensors.gap_filler import SENSOR_NAME as GAP_FILLER
from carbon_pipeline.watttime.simulator import SimulatorServer
from carbon_pipeline_tests.support.dagster_dev import SENSOR_TAG, DagsterDev
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer

BACKFILL_TIMEOUT = 300
JANUARY = "time >= '2025-01-01T00:00:00Z' AND time < '2025-02-01T00:00:00Z'"

# ##### FIXTURES


@pytest.fixture
def webserver(tmp_path: Path, dagster_home: Path, prod_env: dict[str, str]) -> Iterator[DagsterDev]:
    with DagsterDev(dagster_home, prod_env, tmp_path / "dagster_dev.log") as dagster_dev:
        yield dagster_dev


# ##### TESTS


@pytest.mark.slow
def test_month_backfill_is_one_run_with_two_watttime_calls_and_the_last_week_fills_itself(
    webserver: DagsterDev, simulator: SimulatorServer, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    keys = [f"CAISO_NORTH|{(start + timedelta(minutes=15 * n)):%Y-%m-%d-%H:%M}" for n in range(31 * 96)]
    backfill_id = webserver.launch_backfill("carbon_intensity", keys)
    status = webserver.wait_for_backfill(backfill_id, BACKFILL_TIMEOUT)

    assert status["partitionBackfillOrError"]["status"] == "COMPLETED_SUCCESS"
    assert [run["status"] for run in status["runsOrError"]["results"]] == ["SUCCESS"]
    # Recorded oldest first, so the asset's latest materialization is the month's last interval.
    (run_id,) = [run["runId"] for run in status["runsOrError"]["results"]]
    assert webserver.materialized_partitions(run_id) == keys
    january = [query for query in simulator.state.stats()["historical_queries"] if query["start"].startswith("2025-01")]
    assert len(january) == 2
    rows = influxdb_server.query(
        f"SELECT count(moer_lbs_per_mwh) FROM carbon_intensity WHERE {JANUARY}", influxdb_database
    )
    assert rows[0]["count"] == 31 * 288

    gap_fill = webserver.wait_for_finished_run(SENSOR_TAG, GAP_FILLER, BACKFILL_TIMEOUT)
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
