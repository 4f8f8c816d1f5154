"""The average-carbon-intensity gap filler: hourly intervals, and never an hour older than the plan serves."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from carbon_pipeline.assets.average_carbon_intensity import served_from
from carbon_pipeline.coverage import due_intervals
from carbon_pipeline.definitions import AVERAGE_GAP_FILLER, build_definitions
from carbon_pipeline.partitions import HOUR, RANGE_END_TAG, RANGE_START_TAG, build_zone_partitions
from carbon_pipeline.partitions import region_partition_key as zone_key
from carbon_pipeline.settings import PipelineSettings
from carbon_pipeline_tests.support.hours import hour_under_way
from carbon_pipeline_tests.support.tick_logs import evaluate_logged

ZONES = ("DE", "FR")
LOOKBACK_HOURS = 48


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def test_hours_older_than_the_free_tier_serves_are_counted_per_zone_and_never_requested(
    instance: dg.DagsterInstance,
) -> None:
    first_served = served_from(hour_under_way(), 24)
    settings = PipelineSettings(electricitymaps_zones=",".join(ZONES), gap_fill_hours=LOOKBACK_HOURS)
    partitions = build_zone_partitions(ZONES, settings.partitions_start, HOUR)
    due = due_intervals(partitions, datetime.now(UTC), timedelta(hours=LOOKBACK_HOURS), timedelta(minutes=5))

    tick = evaluate_logged(build_definitions(settings).resolve_sensor_def(AVERAGE_GAP_FILLER), instance)

    unavailable = LOOKBACK_HOURS - 24 + 1
    assert (
        "Not requested, not available from this source (Electricity Maps free tier serves the last 24 h): the "
        f"interval(s) before {first_served:%Y-%m-%dT%H:%MZ}, per region: DE {unavailable}, FR {unavailable}."
    ) in tick.messages
    requests = tick.result.run_requests or []
    assert sorted((request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) for request in requests) == [
        (str(zone_key(zone, first_served)), str(zone_key(zone, due.end - HOUR))) for zone in ZONES
    ]
