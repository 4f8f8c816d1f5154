"""What the sensors find materialized: exactly the keys of their window, looked up in bounded batches.

Materializations are recorded on a real instance (runless, as an external tool would report them);
the SQL the lookup sends is watched on the instance's own engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from carbon_pipeline.coverage import KEYS_PER_QUERY, batches, materialized_starts
from carbon_pipeline.partitions import (
    INTERVAL,
    interval_key,
    interval_starts,
    partition_key_text,
    region_partition_key,
)
from carbon_pipeline_tests.support.pipeline_harness import ASSET, REGIONS

FIRST = datetime(2025, 3, 1, tzinfo=UTC)
# Enough intervals that the window's keys (every region, one after the other) fill more than one query.
WINDOW_INTERVALS = KEYS_PER_QUERY // len(REGIONS) + 100
END = FIRST + WINDOW_INTERVALS * INTERVAL


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


def record(instance: dg.DagsterInstance, region: str, *starts: datetime) -> None:
    for start in starts:
        key = str(region_partition_key(region, start))
        instance.report_runless_asset_event(dg.AssetMaterialization(ASSET.key, partition=key))


@contextmanager
def event_log_queries() -> Iterator[list[int]]:
    """The number of bound parameters of each statement that reads the event log while open."""
    counts: list[int] = []

    def watch(conn: object, cursor: object, statement: str, parameters: object, *args: object) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "event_logs" in statement:
            counts.append(len(parameters) if isinstance(parameters, tuple | list | dict) else 0)

    event.listen(Engine, "before_cursor_execute", watch)
    try:
        yield counts
    finally:
        event.remove(Engine, "before_cursor_execute", watch)


def test_the_window_lookup_finds_exactly_the_stored_starts_in_the_window_and_ignores_the_rest(
    instance: dg.DagsterInstance,
) -> None:
    last_region = REGIONS[-1]
    last = END - INTERVAL
    # The window's keys are looked up region by region: the last region's last keys are past the first query.
    assert (len(REGIONS) - 1) * WINDOW_INTERVALS + WINDOW_INTERVALS - 1 >= KEYS_PER_QUERY
    record(instance, REGIONS[0], FIRST, FIRST + 5 * INTERVAL)
    record(instance, last_region, last - INTERVAL, last)
    record(instance, REGIONS[1], FIRST - INTERVAL, FIRST - timedelta(days=30))  # older than the window
    record(instance, REGIONS[1], END)  # the window's end is exclusive
    record(instance, "NOT_CONFIGURED", FIRST)  # a region the lookup is not asked about

    with event_log_queries() as queries:
        found = materialized_starts(instance, ASSET.key, REGIONS, FIRST, END)

    assert found == {REGIONS[0]: {FIRST, FIRST + 5 * INTERVAL}, last_region: {last - INTERVAL, last}}
    assert len(queries) == 2 and max(queries) <= KEYS_PER_QUERY + 10


def test_a_key_stored_again_counts_once_and_an_empty_window_sends_no_query(instance: dg.DagsterInstance) -> None:
    record(instance, REGIONS[0], FIRST, FIRST)
    assert materialized_starts(instance, ASSET.key, REGIONS, FIRST, FIRST + INTERVAL) == {REGIONS[0]: {FIRST}}
    with event_log_queries() as queries:
        assert materialized_starts(instance, ASSET.key, REGIONS, FIRST, FIRST) == {}
    assert queries == []


def test_keys_are_spelled_as_dagster_stores_them() -> None:
    for region in REGIONS:
        for start in interval_starts(FIRST, FIRST + 3 * INTERVAL):
            assert partition_key_text(region, interval_key(start)) == str(region_partition_key(region, start))


def test_batches_keep_order_and_cut_at_the_size() -> None:
    assert list(batches(["a", "b", "c", "d", "e"], 2)) == [["a", "b"], ["c", "d"], ["e"]]
    assert list(batches([], 2)) == []
