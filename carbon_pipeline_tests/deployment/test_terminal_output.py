"""The terminal of ``make ui`` stays readable through range runs, and still shows what went wrong.

``dagster dev`` prints what its daemon, code server and run workers log. Dagster logs one DEBUG line
per event, one per materialized interval; the instance (dagster.yaml) lets run workers print INFO and
above, so a day's run prints a few lines while the event log keeps every event for the UI.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
from dagster._core.instance.ref import InstanceRef

from carbon_pipeline.partitions import INTERVAL
from carbon_pipeline_tests.conftest import OUR_PREFIXES
from carbon_pipeline_tests.support.dagster_dev import DagsterDev

BACKFILL_TIMEOUT_SECONDS = 300
INTERVALS_PER_DAY = 96


def day_of_intervals(day: datetime) -> list[str]:
    return [f"CAISO_NORTH|{day + n * INTERVAL:%Y-%m-%d-%H:%M}" for n in range(INTERVALS_PER_DAY)]


def test_a_range_run_prints_no_line_per_interval_and_a_failed_run_prints_its_error(
    tmp_path: Path, dagster_home: Path
) -> None:
    points = tmp_path / "line_protocol"
    inherited = {key: value for key, value in os.environ.items() if not key.startswith(OUR_PREFIXES)}
    env = inherited | {
        "DAGSTER_HOME": str(dagster_home),
        "CARBON_LINE_PROTOCOL_DIR": str(points),
        "CARBON_PARTITIONS_START": "2025-01-01",
    }
    output = tmp_path / "dagster_dev.log"
    next_days_file = points / "carbon_intensity" / "2025-01-02.lp"
    first_day = datetime(2025, 1, 1, tzinfo=UTC)

    with DagsterDev(dagster_home, env, output) as dev:
        stored = dev.wait_for_backfill(
            dev.launch_backfill("carbon_intensity", day_of_intervals(first_day)), BACKFILL_TIMEOUT_SECONDS
        )
        # A folder where the next day's file belongs: that run's write fails.
        next_days_file.mkdir(parents=True)
        refused = dev.wait_for_backfill(
            dev.launch_backfill("carbon_intensity", day_of_intervals(first_day + timedelta(days=1))),
            BACKFILL_TIMEOUT_SECONDS,
        )

    assert [run["status"] for run in stored["runsOrError"]["results"]] == ["SUCCESS"]
    assert [run["status"] for run in refused["runsOrError"]["results"]] == ["FAILURE"]
    instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home)))
    materialized = instance.get_records_for_run(
        stored["runsOrError"]["results"][0]["runId"], of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records
    assert len(materialized) == INTERVALS_PER_DAY

    printed = output.read_text()
    assert "ASSET_MATERIALIZATION" not in printed
    assert " - DEBUG - " not in printed
    lines = printed.splitlines()
    assert any("STEP_FAILURE" in line for line in lines), f"the failed step is not in {output}"
    refusal = f"cannot write line-protocol file(s) at {next_days_file}: Is a directory"
    assert any(refusal in line for line in lines), f"no error in {output}"
