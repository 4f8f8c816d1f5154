"""A finished run, read back the way the alert and gap-filling sensors read it: the region windows it
covered and why it failed, from what Dagster recorded of real runs on a real instance."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from carbon_pipeline.partitions import INTERVAL, RegionWindow
from carbon_pipeline.run_outcomes import PARTITION_TAG, FailedRegion, FailureKind, run_outcome, run_windows
from carbon_pipeline.sinks.files import LineProtocolFileSink
from carbon_pipeline.watttime.resource import WattTimeResource
from carbon_pipeline.watttime.simulator import SIMULATOR_PASSWORD, SIMULATOR_USERNAME, SimulatorServer
from carbon_pipeline_tests.support.pipeline_harness import ASSET, PARTITIONS, PARTITIONS_START, watttime_resource

REGION = "CAISO_NORTH"
KEY = f"{REGION}|2025-01-01-00:00"
WINDOW = RegionWindow(REGION, PARTITIONS_START, PARTITIONS_START + INTERVAL)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


def _materialize_one_partition(
    instance: dg.DagsterInstance, resources: dict[str, object]
) -> tuple[dg.ExecuteInProcessResult, dg.DagsterRun]:
    """One interval as the UI's "Materialize" of a single partition launches it: a ``dagster/partition`` tag."""
    result = dg.materialize([ASSET], resources=resources, partition_key=KEY, instance=instance, raise_on_error=False)
    run = instance.get_run_by_id(result.run_id)
    assert run is not None and run.tags[PARTITION_TAG] == KEY
    return result, run


@dg.asset
def another_asset() -> None:
    """Any other asset of the same code location."""


def _job(tmp_path: Path, asset: dg.AssetsDefinition = ASSET) -> dg.JobDefinition:
    resources = {
        "watttime": WattTimeResource(username=SIMULATOR_USERNAME, password=SIMULATOR_PASSWORD),
        "point_sink": LineProtocolFileSink(directory=str(tmp_path)),
    }
    jobs = [dg.define_asset_job("job", [asset])]
    return dg.Definitions(assets=[ASSET, another_asset], jobs=jobs, resources=resources).resolve_job_def("job")


def test_a_single_partition_run_covers_its_interval_and_states_the_reason_the_asset_declared(
    instance: dg.DagsterInstance, simulator: SimulatorServer, tmp_path: Path
) -> None:
    resources = {
        "watttime": WattTimeResource(
            username=SIMULATOR_USERNAME, password="not-the-password", base_url=simulator.base_url
        ),
        "point_sink": LineProtocolFileSink(directory=str(tmp_path)),
    }
    result, run = _materialize_one_partition(instance, resources)
    assert not result.success
    outcome = run_outcome(instance, run, datetime.now(UTC), ASSET.key, PARTITIONS)
    assert outcome is not None and not outcome.succeeded
    assert outcome.windows == (WINDOW,) and outcome.regions == (REGION,)
    assert outcome.failure is FailureKind.WATTTIME and not outcome.retryable
    assert outcome.failed == {REGION: FailedRegion(FailureKind.WATTTIME, retryable=False)}
    assert outcome.refused_windows == (WINDOW,)
    assert "region CAISO_NORTH, interval 2025-01-01T00:00Z..2025-01-01T00:15Z" in outcome.message_for(REGION)


def test_a_crash_the_asset_did_not_declare_fails_every_region_it_covered_with_dagsters_error(
    instance: dg.DagsterInstance, simulator: SimulatorServer, tmp_path: Path
) -> None:
    """A day file that is not line protocol: merging into it raises an error no handler in the asset knows."""
    (tmp_path / "carbon_intensity").mkdir()
    (tmp_path / "carbon_intensity" / "2025-01-01.lp").write_text("not line protocol\n")
    resources = {
        "watttime": watttime_resource(simulator.base_url),
        "point_sink": LineProtocolFileSink(directory=str(tmp_path)),
    }
    result, run = _materialize_one_partition(instance, resources)
    assert not result.success
    outcome = run_outcome(instance, run, datetime.now(UTC), ASSET.key, PARTITIONS)
    assert outcome is not None
    assert outcome.failure is FailureKind.OTHER and outcome.retryable
    assert 'Error occurred while executing op "carbon_intensity"' in outcome.message
    assert outcome.failed == {REGION: FailedRegion(FailureKind.OTHER, retryable=True)}
    assert outcome.refused_windows == ()


def test_a_run_that_failed_before_any_step_reports_dagsters_run_failure_message(
    instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    """A run whose worker never got to the asset (lost host, launch failure): only the run failure is recorded."""
    job = _job(tmp_path)
    run = instance.create_run_for_job(job, tags={PARTITION_TAG: KEY}, asset_selection=frozenset({ASSET.key}))
    instance.report_run_failed(run, "the run worker was lost before it started the asset")
    failed = instance.get_run_by_id(run.run_id)
    assert failed is not None and failed.status == dg.DagsterRunStatus.FAILURE
    outcome = run_outcome(instance, failed, datetime.now(UTC), ASSET.key, PARTITIONS)
    assert outcome is not None and outcome.windows == (WINDOW,)
    assert outcome.failure is FailureKind.OTHER and outcome.retryable
    assert "the run worker was lost before it started the asset" in outcome.message


def test_runs_of_other_assets_or_of_unknown_partitions_have_no_outcome(
    instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    foreign = instance.create_run_for_job(
        _job(tmp_path, another_asset), tags={PARTITION_TAG: KEY}, asset_selection=frozenset({another_asset.key})
    )
    assert run_outcome(instance, foreign, datetime.now(UTC), ASSET.key, PARTITIONS) is None
    assert run_windows({PARTITION_TAG: "ATLANTIS|2025-01-01-00:00"}, PARTITIONS) == []
    assert run_windows({PARTITION_TAG: f"{REGION}|not-a-time"}, PARTITIONS) == []
    assert run_windows({"team": "grid"}, PARTITIONS) == []
