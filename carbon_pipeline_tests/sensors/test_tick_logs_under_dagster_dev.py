"""Under `dagster dev`, each sensor's first tick says in its log ("View logs" in the UI) what it decided.

The daemon evaluates the three sensors as the deployment starts, on a prod deployment against the
WattTime simulator and a real InfluxDB; the ticks and their logs are read through the UI's GraphQL
API, as the UI's tick list and its "View logs" dialog read them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from carbon_pipeline.partitions import INTERVAL, RANGE_END_TAG, RANGE_START_TAG, format_window, interval_start
from carbon_pipeline.sensors.failure_alerts import SENSOR_NAME as ALERTS
from carbon_pipeline.sensors.freshness import SENSOR_NAME as FRESHNESS
from carbon_pipeline.sensors.gap_filler import SENSOR_NAME as GAP_FILLER
from carbon_pipeline_tests.support.dagster_dev import SENSOR_TAG, DagsterDev

TIMEOUT_SECONDS = 180
REGION = "CAISO_NORTH"
MISSING = re.compile(
    r"^Window (?P<window>\S+) \((?P<due>\d+) interval\(s\) per region\): "
    r"(?P<missing>\d+) interval\(s\) missing in 1 of 1 region\(s\): CAISO_NORTH (?P=missing)\.$"
)


@pytest.fixture
def dagster_dev(tmp_path: Path, dagster_home: Path, prod_env: dict[str, str]) -> Iterator[DagsterDev]:
    env = prod_env | {"CARBON_GAP_FILL_HOURS": "1"}
    with DagsterDev(dagster_home, env, tmp_path / "dagster_dev.log") as dagster_dev:
        yield dagster_dev


def first_logged_tick(dagster_dev: DagsterDev, sensor: str) -> dict[str, Any]:
    ticks = dagster_dev.poll(
        lambda: [tick for tick in dagster_dev.sensor_ticks(sensor) if tick["messages"] and tick["status"] != "STARTED"],
        bool,
        TIMEOUT_SECONDS,
        f"a finished tick of {sensor} with log lines",
    )
    return ticks[-1]


@pytest.mark.integration
@pytest.mark.slow
def test_each_sensor_tick_logs_what_it_found_and_what_it_did_or_why_not(dagster_dev: DagsterDev) -> None:
    gap_fill = first_logged_tick(dagster_dev, GAP_FILLER)
    assert gap_fill["status"] == "SUCCESS" and len(gap_fill["runIds"]) == 1
    found, requested = gap_fill["messages"]
    missing = MISSING.match(found)
    assert missing is not None, found
    (run,) = [run for run in dagster_dev.runs_tagged(SENSOR_TAG, GAP_FILLER) if run["runId"] in gap_fill["runIds"]]
    tags = {tag["key"]: tag["value"] for tag in run["tags"]}
    first, last = (interval_start(tags[tag].split("|")[1]) for tag in (RANGE_START_TAG, RANGE_END_TAG))
    assert requested == f"Requesting 1 run(s): region {REGION}, interval {format_window(first, last + INTERVAL)}"
    assert int(missing["missing"]) == (last + INTERVAL - first) / INTERVAL

    # Recording a check result requests no run: Dagster lists the tick as skipped; its reason says what it did.
    freshness = first_logged_tick(dagster_dev, FRESHNESS)
    assert freshness["status"] == "SKIPPED"
    assert freshness["skipReason"].startswith("recorded the newest_interval_fresh check, failed (WARN): Late:")
    assert re.match(rf"^Newest due interval \S+: missing for 1 of 1 region\(s\): {REGION}\.$", freshness["messages"][0])
    assert f"Alerts sent: late alert for {REGION}" in freshness["messages"]
    assert freshness["messages"][-1] == f"Skipped: {freshness['skipReason']}"

    alerts = first_logged_tick(dagster_dev, ALERTS)
    assert alerts["status"] == "SKIPPED"
    assert alerts["messages"][-1] == f"Skipped: {alerts['skipReason']}"
