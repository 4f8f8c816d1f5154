"""Freshness: the newest due interval per region, recorded as a check and alerted once per late spell."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from carbon_pipeline.assets.carbon_intensity import build_carbon_intensity_asset
from carbon_pipeline.assets.watttime_access import build_watttime_access_asset
from carbon_pipeline.coverage import due_intervals
from carbon_pipeline.notifier import AlertNotifier
from carbon_pipeline.partitions import (
    INTERVAL,
    build_interval_partitions,
    format_window,
    region_partition_key,
    region_range_tags,
)
from carbon_pipeline.sensors.freshness import (
    CHECK_NAME,
    build_freshness_check,
    build_freshness_sensor,
    measure_freshness,
)
from carbon_pipeline.sinks.files import LineProtocolFileSink
from carbon_pipeline.watttime.simulator import SimulatorConfig, SimulatorServer
from carbon_pipeline_tests.support.pipeline_harness import (
    ASSET,
    PARTITIONS,
    PARTITIONS_START,
    REGIONS,
    materialize,
    watttime_resource,
)
from carbon_pipeline_tests.support.tick_logs import evaluate_logged
from carbon_pipeline_tests.support.webhook_receiver import WebhookReceiver

DELAY = timedelta(minutes=5)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture
def resources(simulator: SimulatorServer, tmp_path: Path) -> dict[str, object]:
    return {
        "watttime": watttime_resource(simulator.base_url),
        "point_sink": LineProtocolFileSink(directory=str(tmp_path)),
    }


def store_newest(instance: dg.DagsterInstance, resources: dict[str, object], region: str) -> None:
    """The newest due interval and the one after, so a quarter-hour passing mid-test changes nothing."""
    newest = due_intervals(PARTITIONS, datetime.now(UTC), timedelta(days=1), DELAY).newest
    assert newest is not None
    assert materialize(resources, region, newest, newest + INTERVAL, instance=instance).success


def test_late_regions_are_recorded_alerted_once_and_announced_when_fresh_again(
    instance: dg.DagsterInstance, resources: dict[str, object]
) -> None:
    sensor = build_freshness_sensor(ASSET.key, PARTITIONS, DELAY)
    with WebhookReceiver() as receiver:
        notifier = AlertNotifier(webhook_url=receiver.url)

        def evaluate(cursor: str | None) -> dg.SensorResult:
            context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"alert_notifier": notifier})
            result = sensor(context)
            assert isinstance(result, dg.SensorResult)
            return result

        store_newest(instance, resources, "CAISO_NORTH")
        late = evaluate(None)
        (evaluation,) = late.asset_events
        assert isinstance(evaluation, dg.AssetCheckEvaluation)
        assert evaluation.check_name == CHECK_NAME and not evaluation.passed
        assert evaluation.metadata["stale_regions"].value == "IE, PJM_DC"
        assert [(p["event"], p["region"]) for p in receiver.payloads] == [("alert", "IE"), ("alert", "PJM_DC")]

        unchanged = evaluate(late.cursor)
        assert unchanged.asset_events == [] and len(receiver.payloads) == 2

        for region in ("IE", "PJM_DC"):
            store_newest(instance, resources, region)
        fresh = evaluate(unchanged.cursor)
        (evaluation,) = fresh.asset_events
        assert isinstance(evaluation, dg.AssetCheckEvaluation) and evaluation.passed
        assert [(p["event"], p["region"]) for p in receiver.payloads[2:]] == [
            ("recovery", "IE"),
            ("recovery", "PJM_DC"),
        ]


@pytest.mark.slow
def test_the_check_runs_from_the_ui_as_an_ordinary_check_execution(
    instance: dg.DagsterInstance, resources: dict[str, object]
) -> None:
    for region in REGIONS:
        store_newest(instance, resources, region)
    check = build_freshness_check(ASSET.key, PARTITIONS, DELAY)
    job = dg.define_asset_job("freshness", selection=dg.AssetSelection.checks(check))
    definitions = dg.Definitions(assets=[ASSET], asset_checks=[check], jobs=[job], resources=resources)
    result = definitions.resolve_job_def("freshness").execute_in_process(instance=instance)
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed and "Every region has its newest due interval" in str(evaluation.description)


def test_before_the_first_interval_is_due_nothing_is_late(instance: dg.DagsterInstance) -> None:
    """The partitions start now and the first interval has not closed: every region passes, none is stale."""
    start = datetime.now(UTC).replace(second=0, microsecond=0)
    partitions = dg.MultiPartitionsDefinition(
        {
            "region": dg.StaticPartitionsDefinition(list(REGIONS)),
            "time": build_interval_partitions(start),
        }
    )
    freshness = measure_freshness(instance, ASSET.key, partitions, start, DELAY)
    assert freshness.passed and freshness.stale_regions == []
    assert freshness.description() == "No interval is due yet."
    assert freshness.metadata(start)["newest_due_interval"] == ""


@pytest.mark.integration  # a materialization tails its compute logs in a process
def test_a_region_outside_the_plan_is_never_late(instance: dg.DagsterInstance, tmp_path: Path) -> None:
    """With the plan read, only the regions it allows historical MOER for are judged."""
    planned, *outside = REGIONS
    with SimulatorServer(SimulatorConfig(plan_regions=frozenset({planned}), publication_lag_seconds=0)) as server:
        resources = {
            "watttime": watttime_resource(server.base_url),
            "point_sink": LineProtocolFileSink(directory=str(tmp_path)),
        }
        assert dg.materialize([build_watttime_access_asset(REGIONS)], resources=resources, instance=instance).success
        store_newest(instance, resources, planned)

    freshness = measure_freshness(instance, ASSET.key, PARTITIONS, datetime.now(UTC), DELAY)

    assert outside and freshness.passed and freshness.stale_regions == []
    assert set(freshness.newest_stored) == {planned}


def test_a_tick_logs_which_regions_are_late_the_alerts_and_why_it_then_records_nothing(
    instance: dg.DagsterInstance,
) -> None:
    newest = due_intervals(PARTITIONS, datetime.now(UTC), timedelta(days=1), DELAY).newest
    assert newest is not None
    for start in (newest, newest + INTERVAL):
        key = str(region_partition_key("CAISO_NORTH", start))
        instance.report_runless_asset_event(dg.AssetMaterialization(ASSET.key, partition=key))
    sensor = build_freshness_sensor(ASSET.key, PARTITIONS, DELAY)
    resources = {"alert_notifier": AlertNotifier()}
    interval = format_window(newest, newest + INTERVAL)

    first = evaluate_logged(sensor, instance, resources=resources)
    assert f"Newest due interval {interval}: missing for 2 of 3 region(s): IE, PJM_DC." in first.messages
    assert "Alerts sent: late alert for IE, PJM_DC" in first.messages
    late = f"Late: interval {interval} is missing for region(s) IE, PJM_DC."
    assert first.skip_message == f"recorded the {CHECK_NAME} check, failed (WARN): {late}"
    assert first.lines_starting("Skipped: ") == [f"Skipped: {first.skip_message}"]
    assert len(first.result.asset_events) == 1

    again = evaluate_logged(sensor, instance, first.result.cursor, resources)
    assert "Alerts sent: none; not alerted again, still late: IE, PJM_DC" in again.messages
    assert again.skip_message == f"unchanged: {late}" and again.result.asset_events == []
    assert again.lines_starting("Skipped: ") == [f"Skipped: {again.skip_message}"]


class ListedPartitions(dg.MultiPartitionsDefinition):
    """The harness's region x interval grid, counting the times something lists all of its keys."""

    listings = 0

    def get_partition_keys(self, *args: Any, **kwargs: Any) -> Sequence[dg.MultiPartitionKey]:
        type(self).listings += 1
        return super().get_partition_keys(*args, **kwargs)


def test_the_check_after_a_range_run_lists_no_partition_keys_and_names_its_materialization(
    instance: dg.DagsterInstance, resources: dict[str, object]
) -> None:
    """A range run selecting the asset with its checks (as ``--select carbon_intensity`` does) skips the
    check, whose step waits on an output the asset does not yield (it records each interval itself);
    run on its own, as the Checks tab runs it, the check evaluates.

    Listing every key of the grid costs seconds per region and grows with every interval; neither run
    may make Dagster do it, and the check's result points at the materialization it saw.
    """
    partitions = ListedPartitions(
        {"region": dg.StaticPartitionsDefinition(list(REGIONS)), "time": build_interval_partitions(PARTITIONS_START)}
    )
    asset = build_carbon_intensity_asset(partitions)
    check = build_freshness_check(asset.key, partitions, DELAY)
    first = PARTITIONS_START
    tags = region_range_tags("PJM_DC", first, first + 3 * INTERVAL)
    ListedPartitions.listings = 0
    result = dg.materialize([asset, check], resources=resources, tags=tags, instance=instance)
    checked = dg.materialize(
        [asset, check], resources=resources, instance=instance, selection=dg.AssetSelection.checks(check)
    )

    assert result.success and checked.success and ListedPartitions.listings == 0
    assert CHECK_NAME not in [item.check_name for item in result.get_asset_check_evaluations()]
    (evaluation,) = [item for item in checked.get_asset_check_evaluations() if item.check_name == CHECK_NAME]
    assert not evaluation.passed and evaluation.metadata["stale_regions"].value == "CAISO_NORTH, IE, PJM_DC"
    newest = instance.fetch_materializations(asset.key, limit=1).records[0]
    target = evaluation.target_materialization_data
    assert target is not None and (target.storage_id, target.run_id) == (newest.storage_id, result.run_id)
