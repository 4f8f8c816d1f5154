"""Freshness: the newest due interval per region, recorded as a check and alerted once per late spell."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from carbon_pipeline.coverage import due_intervals
from carbon_pipeline.notifier import AlertNotifier
from carbon_pipeline.partitions import INTERVAL, build_interval_partitions
from carbon_pipeline.sensors.freshness import (
    CHECK_NAME,
    build_freshness_check,
    build_freshness_sensor,
    measure_freshness,
)
from carbon_pipeline.sinks.files import LineProtocolFileSink
from carbon_pipeline.watttime.simulator import SimulatorServer
from carbon_pipeline_tests.support.pipeline_harness import ASSET, PARTITIONS, REGIONS, materialize, watttime_resource
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
