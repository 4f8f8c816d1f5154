"""The commands a Dagster user types first work in a fresh clone, as the README gives them.

``dagster dev``, ``dagster definitions validate -w workspace.yaml``, ``dg check defs``, ``dg list defs``
and ``dg dev`` run from the clone's root with no DAGSTER_HOME: Dagster then keeps its instance in a
temporary ``.tmp_dagster_home_*`` folder there, configured by the repository's ``dagster.yaml``.
``dg launch`` runs the local deployment in-process against the instance in DAGSTER_HOME, which
also receives the run's line-protocol files. What the README's first hour in the UI points at (the
assets, their lineage, the schedules and the sensors, all running) is read from the UI's own
GraphQL API under ``dagster dev``.
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

from carbon_pipeline.definitions import ACCURACY_AUTOMATION, FORECAST_GAP_FILLER
from carbon_pipeline.sensors.gap_filler import SENSOR_NAME as MEASUREMENT_GAP_FILLER
from carbon_pipeline_tests.conftest import OUR_PREFIXES
from carbon_pipeline_tests.support.dagster_dev import DAGSTER, FINISHED_BACKFILL, REPO, SENSOR_TAG, DagsterDev

DG = Path(sys.executable).parent / "dg"
COMMAND_TIMEOUT_SECONDS = 300
GAP_FILL_TIMEOUT_SECONDS = 180
TEMPORARY_HOMES = ".tmp_dagster_home_*"
ASSETS_BY_LOCATION = "{ assetNodes { assetKey { path } repository { location { name } } } }"
BACKFILLS = "{ partitionBackfillsOrError { ... on PartitionBackfills { results { status tags { key value } } } } }"
# What the Catalog, Lineage and Automation pages show: groups, upstream assets, checks, schedules, sensors.
UI_OVERVIEW = """
{
  assetNodes {
    assetKey { path }
    groupName
    dependencyKeys { path }
    assetChecksOrError { ... on AssetChecks { checks { name } } }
  }
  repositoriesOrError {
    ... on RepositoryConnection {
      nodes {
        schedules { name cronSchedule pipelineName scheduleState { status } }
        sensors { name sensorType sensorState { status } }
      }
    }
  }
}"""


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


def automation_backfill(dev: DagsterDev) -> str:
    """The status of the accuracy automation's first backfill, once it has finished."""
    backfills = dev.poll(
        lambda: [
            backfill["status"]
            for backfill in dev.graphql(BACKFILLS)["partitionBackfillsOrError"]["results"]
            if {"key": SENSOR_TAG, "value": ACCURACY_AUTOMATION} in backfill["tags"]
        ],
        lambda statuses: any(status in FINISHED_BACKFILL for status in statuses),
        GAP_FILL_TIMEOUT_SECONDS,
        f"a finished backfill of {ACCURACY_AUTOMATION}",
    )
    return str(backfills[-1])


def serve_then_stop(clone: Path, env: Mapping[str, str], log_path: Path, command: Sequence[str | Path]) -> None:
    """Start ``command`` in the clone, find the asset in the UI's API, see both gap fillers' first runs fill
    the window and the accuracy of the days they completed judged, stop it; it exits cleanly and tidies up.

    On their first ticks the gap fillers request the empty window, and once they have stored it the
    automation judges the recent days; stopping while any of those runs still writes into the temporary
    home would race Dagster's clean-up, so the test waits for them, as a newcomer sees them.
    """
    dev = DagsterDev(clone, env, log_path, [str(part) for part in command])
    with dev:
        assert ("carbon_pipeline", "carbon_intensity") in served_assets(dev)
        for gap_filler in (MEASUREMENT_GAP_FILLER, FORECAST_GAP_FILLER):
            filled = dev.wait_for_finished_run(SENSOR_TAG, gap_filler, GAP_FILL_TIMEOUT_SECONDS)
            assert filled["status"] == "SUCCESS", f"{gap_filler}'s first run ended {filled['status']}; {dev.logs()}"
        assert automation_backfill(dev) == "COMPLETED_SUCCESS", dev.logs()
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


def test_dg_list_defs_lists_the_assets_their_jobs_schedules_and_sensors(
    clone: Path, newcomer_env: dict[str, str]
) -> None:
    listed = json.loads(run([DG, "list", "defs", "--json"], clone, newcomer_env).stdout)
    assert {asset["asset_key"] for asset in listed["assets"]} == {
        "carbon_intensity",
        "carbon_forecast",
        "carbon_cleanest_window",
        "carbon_forecast_accuracy",
        "carbon_intensity_revisions",
        "carbon_signal_index",
        "watttime_access",
    }
    assert {job["name"] for job in listed["jobs"]} == {
        "carbon_intensity_job",
        "carbon_forecast_job",
        "carbon_intensity_revisions_job",
        "carbon_signal_index_job",
        "watttime_access_job",
    }
    assert {schedule["name"] for schedule in listed["schedules"]} == {
        "carbon_intensity_every_15_minutes",
        "carbon_forecast_every_15_minutes",
        "carbon_intensity_revisions_hourly",
        "carbon_signal_index_every_15_minutes",
        "watttime_access_daily",
    }
    assert {sensor["name"] for sensor in listed["sensors"]} == {
        "carbon_intensity_failure_alerts",
        "carbon_intensity_freshness",
        "carbon_intensity_gap_filler",
        "carbon_forecast_failure_alerts",
        "carbon_forecast_gap_filler",
        "carbon_forecast_accuracy_automation",
        "carbon_signal_index_failure_alerts",
        "watttime_access_automation",
    }


@pytest.mark.slow
def test_the_ui_shows_the_forecast_assets_with_their_lineage_schedule_and_sensors_running(
    clone: Path, newcomer_env: dict[str, str], dagster_home: Path, tmp_path: Path
) -> None:
    env = newcomer_env | {"DAGSTER_HOME": str(dagster_home)}
    with DagsterDev(clone, env, tmp_path / "dagster_dev.log", [DAGSTER, "dev"]) as dev:
        shown = dev.graphql(UI_OVERVIEW)
    assets = {"/".join(node["assetKey"]["path"]): node for node in shown["assetNodes"]}
    assert {key: node["groupName"] for key, node in assets.items()} == dict.fromkeys(
        [
            "carbon_intensity",
            "carbon_forecast",
            "carbon_cleanest_window",
            "carbon_forecast_accuracy",
            "carbon_intensity_revisions",
            "carbon_signal_index",
            "watttime_access",
        ],
        "grid_carbon",
    )
    assert {key: sorted("/".join(dep["path"]) for dep in node["dependencyKeys"]) for key, node in assets.items()} == {
        "carbon_intensity": [],
        "carbon_forecast": [],
        "carbon_cleanest_window": ["carbon_forecast"],
        "carbon_forecast_accuracy": ["carbon_forecast", "carbon_intensity"],
        "carbon_intensity_revisions": [],
        "carbon_signal_index": [],
        "watttime_access": [],
    }
    checks = assets["carbon_forecast"]["assetChecksOrError"]["checks"]
    assert [check["name"] for check in checks] == ["watttime_forecast_valid"]
    (repository,) = shown["repositoriesOrError"]["nodes"]
    schedules = {
        item["name"]: (item["cronSchedule"], item["pipelineName"], item["scheduleState"]["status"])
        for item in repository["schedules"]
    }
    assert schedules == {
        "carbon_intensity_every_15_minutes": ("5,20,35,50 * * * *", "carbon_intensity_job", "RUNNING"),
        "carbon_forecast_every_15_minutes": ("2,17,32,47 * * * *", "carbon_forecast_job", "RUNNING"),
        "carbon_intensity_revisions_hourly": ("40 * * * *", "carbon_intensity_revisions_job", "RUNNING"),
        "carbon_signal_index_every_15_minutes": ("1,16,31,46 * * * *", "carbon_signal_index_job", "RUNNING"),
        "watttime_access_daily": ("10 0 * * *", "watttime_access_job", "RUNNING"),
    }
    sensors = {item["name"]: (item["sensorType"], item["sensorState"]["status"]) for item in repository["sensors"]}
    assert sensors == {
        "carbon_intensity_failure_alerts": ("STANDARD", "RUNNING"),
        "carbon_intensity_freshness": ("STANDARD", "RUNNING"),
        "carbon_intensity_gap_filler": ("STANDARD", "RUNNING"),
        "carbon_forecast_failure_alerts": ("STANDARD", "RUNNING"),
        "carbon_forecast_gap_filler": ("STANDARD", "RUNNING"),
        "carbon_forecast_accuracy_automation": ("AUTO_MATERIALIZE", "RUNNING"),
        "carbon_signal_index_failure_alerts": ("STANDARD", "RUNNING"),
        "watttime_access_automation": ("AUTO_MATERIALIZE", "RUNNING"),
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
