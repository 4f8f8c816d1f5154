"""The commands a Dagster user types first work in a fresh clone, as the README gives them.

``dagster dev``, ``dagster definitions validate -w workspace.yaml``, ``dg check defs``, ``dg list defs``
and ``dg dev`` run from the clone's root with no DAGSTER_HOME: Dagster then keeps its instance in a
temporary ``.tmp_dagster_home_*`` folder there, configured by the repository's ``dagster.yaml``.
``dg launch`` runs the local deployment in-process against the instance in DAGSTER_HOME, which
also receives the run's line-protocol files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.instance.ref import InstanceRef

from carbon_pipeline.sensors.gap_filler import TRIGGER, TRIGGER_TAG
from carbon_pipeline_tests.conftest import OUR_PREFIXES
from carbon_pipeline_tests.support.dagster_dev import DAGSTER, REPO, DagsterDev

DG = Path(sys.executable).parent / "dg"
COMMAND_TIMEOUT_SECONDS = 300
GAP_FILL_TIMEOUT_SECONDS = 180
TEMPORARY_HOMES = ".tmp_dagster_home_*"
ASSETS_BY_LOCATION = "{ assetNodes { assetKey { path } repository { location { name } } } }"


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What a fresh clone of this working tree holds: tracked and new files; no .venv, .dagster_home or .env."""
    target = tmp_path_factory.mktemp("clone")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (REPO / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target / name)
    return target


@pytest.fixture
def newcomer_env(tmp_path: Path) -> dict[str, str]:
    """A shell with none of our variables and no DAGSTER_HOME; a HOME of its own and no telemetry uploads."""
    user_home = tmp_path / "user_home"
    user_home.mkdir()
    inherited = {key: value for key, value in os.environ.items() if not key.startswith(OUR_PREFIXES)}
    return inherited | {"HOME": str(user_home), "DAGSTER_DISABLE_TELEMETRY": "1"}


def run(command: Sequence[str | Path], cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """``command`` to completion; fails the test with its output unless it exits 0."""
    finished = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )
    assert finished.returncode == 0, f"{command} exited {finished.returncode}:\n{finished.stdout}\n{finished.stderr}"
    return finished


def served_assets(dev: DagsterDev) -> set[tuple[str, str]]:
    """(code location, asset key) for every asset the webserver lists."""
    nodes = dev.graphql(ASSETS_BY_LOCATION)["assetNodes"]
    return {(node["repository"]["location"]["name"], "/".join(node["assetKey"]["path"])) for node in nodes}


def serve_then_stop(clone: Path, env: Mapping[str, str], log_path: Path, command: Sequence[str | Path]) -> None:
    """Start ``command`` in the clone, find the asset in the UI's API, see the gap filler's first run fill
    the window, stop it; it exits cleanly and tidies up.

    The gap filler requests the empty window on its first tick; stopping while that run still writes
    into the temporary home would race Dagster's clean-up, so the test waits for it, as a newcomer sees it.
    """
    dev = DagsterDev(clone, env, log_path, [str(part) for part in command])
    with dev:
        assert ("carbon_pipeline", "carbon_intensity") in served_assets(dev)
        filled = dev.wait_for_finished_run(TRIGGER_TAG, TRIGGER, GAP_FILL_TIMEOUT_SECONDS)
        assert filled["status"] == "SUCCESS", f"the gap filler's first run ended {filled['status']}; {dev.logs()}"
        (temporary_home,) = clone.glob(TEMPORARY_HOMES)
        assert (temporary_home / "history" / "runs" / "index.db").exists(), "event log outside the instance's home"
        assert dev.stop() == 0, f"unclean exit; {dev.logs()}"
    assert not list(clone.glob(TEMPORARY_HOMES))


def test_dagster_definitions_validate_passes_without_dagster_home(clone: Path, newcomer_env: dict[str, str]) -> None:
    finished = run([DAGSTER, "definitions", "validate", "-w", "workspace.yaml"], clone, newcomer_env)
    assert "All code locations passed validation" in finished.stderr + finished.stdout


def test_plain_dagster_dev_serves_the_assets_without_dagster_home(
    clone: Path, newcomer_env: dict[str, str], tmp_path: Path
) -> None:
    serve_then_stop(clone, newcomer_env, tmp_path / "dagster_dev.log", [DAGSTER, "dev"])


def test_dg_dev_serves_the_assets_under_the_code_location_name_of_workspace_yaml(
    clone: Path, newcomer_env: dict[str, str], tmp_path: Path
) -> None:
    serve_then_stop(clone, newcomer_env, tmp_path / "dg_dev.log", [DG, "dev"])


def test_dg_check_defs_loads_the_definitions(clone: Path, newcomer_env: dict[str, str]) -> None:
    finished = run([DG, "check", "defs"], clone, newcomer_env)
    assert "All definitions loaded successfully." in finished.stdout


def test_dg_list_defs_lists_the_asset_its_job_schedule_and_sensors(clone: Path, newcomer_env: dict[str, str]) -> None:
    listed = json.loads(run([DG, "list", "defs", "--json"], clone, newcomer_env).stdout)
    assert [asset["asset_key"] for asset in listed["assets"]] == ["carbon_intensity"]
    assert [job["name"] for job in listed["jobs"]] == ["carbon_intensity_job"]
    assert [schedule["name"] for schedule in listed["schedules"]] == ["carbon_intensity_every_15_minutes"]
    assert {sensor["name"] for sensor in listed["sensors"]} == {
        "carbon_intensity_failure_alerts",
        "carbon_intensity_freshness",
        "carbon_intensity_gap_filler",
    }


def test_dg_launch_materializes_one_interval_into_the_instance_and_its_files(
    clone: Path, newcomer_env: dict[str, str], dagster_home: Path
) -> None:
    # As the README has it: an interval that closed an hour or two ago, inside the default window.
    hour = (datetime.now(UTC) - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    partition = f"CAISO_NORTH|{hour:%Y-%m-%d-%H}:00"
    env = newcomer_env | {"DAGSTER_HOME": str(dagster_home)}
    run([DG, "launch", "--assets", "carbon_intensity", "--partition", partition], clone, env)

    instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home)))
    assert set(instance.get_materialized_partitions(dg.AssetKey("carbon_intensity"))) == {partition}
    lines = (dagster_home / "line_protocol" / "carbon_intensity" / f"{hour:%Y-%m-%d}.lp").read_text().splitlines()
    assert len(lines) == 3 and all("region=CAISO_NORTH" in line for line in lines)
