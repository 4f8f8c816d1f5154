"""Two `dagster asset materialize` runs of the local deployment writing the same day's file at once."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from carbon_pipeline.watttime.simulated import LOCAL_REVISION_SHARE
from carbon_pipeline_tests.conftest import OUR_PREFIXES
from carbon_pipeline_tests.deployment.test_cli import COMMAND_TIMEOUT, DAGSTER, MODULE
from carbon_pipeline_tests.support.pipeline_harness import REPO, StoredPoint, truth

REGION = "CAISO_NORTH"
DAY = datetime(2025, 1, 1, tzinfo=UTC)
# Overlapping ranges: both runs write 08:00 to 16:00, each writes a third of the day alone.
RANGES = (
    f"{REGION}|2025-01-01-00:00...{REGION}|2025-01-01-15:45",
    f"{REGION}|2025-01-01-08:00...{REGION}|2025-01-01-23:45",
)
# Other series already in the day file, one point a second: each run's read-modify-write of the file then
# takes long enough (about half a second) that two runs started together are writing it at the same time.
SEED_SERIES = 2


def _seed_lines() -> list[str]:
    start = int(DAY.timestamp())
    return [
        f"carbon_intensity,region=SEED_{series},source=simulator moer_lbs_per_mwh=900.5 {start + second}"
        for series in range(SEED_SERIES)
        for second in range(86_400)
    ]


def _local_env(home: Path, line_protocol: Path) -> dict[str, str]:
    inherited = {key: value for key, value in os.environ.items() if not key.startswith(OUR_PREFIXES)}
    return inherited | {
        "DAGSTER_HOME": str(home),
        "DAGSTER_DEPLOYMENT": "local",
        "CARBON_REGIONS": REGION,
        "CARBON_PARTITIONS_START": "2025-01-01",
        "CARBON_LINE_PROTOCOL_DIR": str(line_protocol),
    }


def _stored_point(line: str) -> StoredPoint:
    _, fields, timestamp = line.split(" ")
    values = dict(field.split("=", 1) for field in fields.split(","))
    return StoredPoint(int(timestamp), float(values["moer_lbs_per_mwh"]), float(values["carbon_intensity_gco2_kwh"]))


@pytest.mark.slow
def test_two_cli_runs_writing_one_day_at_once_leave_every_point_once_and_true(tmp_path: Path) -> None:
    line_protocol = tmp_path / "line_protocol"
    day_file = line_protocol / "carbon_intensity" / "2025-01-01.lp"
    day_file.parent.mkdir(parents=True)
    day_file.write_text("".join(line + "\n" for line in _seed_lines()))
    runs = []
    for number, partition_range in enumerate(RANGES):
        home = tmp_path / f"home_{number}"
        home.mkdir()
        command = [DAGSTER, "asset", "materialize", *MODULE, "--select", "carbon_intensity"]
        runs.append(
            subprocess.Popen(
                [*command, "--partition-range", partition_range],
                env=_local_env(home, line_protocol),
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = [run.communicate(timeout=COMMAND_TIMEOUT)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], "\n".join(output[-3000:] for output in outputs)

    lines = day_file.read_text().splitlines()
    assert len(lines) == len(set(lines))
    ours = [line for line in lines if f",region={REGION}," in line]
    assert sorted((_stored_point(line) for line in ours), key=lambda point: point.time) == truth(
        REGION, DAY, DAY + timedelta(days=1), revision_share=LOCAL_REVISION_SHARE
    )
    assert set(lines) - set(ours) == set(_seed_lines())
    assert sorted(path.name for path in day_file.parent.iterdir()) == ["2025-01-01.lp", "2025-01-01.lp.lock"]
