"""A long materialization history, written in about a minute, for the history benchmark.

Two years of 20 regions is 1.4 million materializations. Even in batches through the batching
storage, which serializes every event, they take about eight minutes to record, while the
benchmark only needs the rows Dagster's asset queries read. So Dagster records one real runless
materialization, the one for the oldest key, and its row is copied for every other key with the
partition swapped, 10,000 rows per statement, into the event log's cross-run index: the table
every asset query reads (on SQLite, the per-run files are left out; nothing reads a runless event
from them). The newest key is then recorded by Dagster again, so the asset's latest-event record
points at it as after a real run. The seeded rows carry no tags: none of the measured lookups
reads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from time import perf_counter
from typing import Any

import dagster as dg

from carbon_pipeline.coverage import batches
from carbon_pipeline.dagster_private import SqlEventLogStorage, SqlEventLogStorageTable, event_log_storage
from carbon_pipeline.partitions import interval_starts, region_partition_key

ROWS_PER_STATEMENT = 10_000


@dataclass(frozen=True)
class SeededHistory:
    events: int
    seconds: float


def seed_history(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, regions: Sequence[str], first: datetime, end: datetime
) -> SeededHistory:
    """One materialization per region and interval start in [first, end); how many and how long it took."""
    started = perf_counter()
    keys = [str(region_partition_key(region, start)) for region in regions for start in interval_starts(first, end)]
    storage = event_log_storage(instance)
    if not isinstance(storage, SqlEventLogStorage):
        raise TypeError(f"seeding writes SQL rows; this instance's event log is a {type(storage).__name__}")
    template = _recorded_row(instance, storage, asset_key, keys[0])
    for batch in batches(keys[1:-1], ROWS_PER_STATEMENT):
        rows = [_row_for(template, keys[0], key) for key in batch]
        with storage.index_transaction() as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key, partition=keys[-1]))
    return SeededHistory(len(keys), perf_counter() - started)


def _recorded_row(
    instance: dg.DagsterInstance, storage: SqlEventLogStorage, asset_key: dg.AssetKey, key: str
) -> dict[str, Any]:
    """The event-log row Dagster writes for a runless materialization of ``key``, as stored."""
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key, partition=key))
    (record,) = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key, asset_partitions=[key]), limit=1
    ).records
    row = storage._event_to_row(record.event_log_entry)
    if row["event"].count(key) != 1 or row["partition"] != key:
        raise RuntimeError(f"the stored event names partition {key!r} other than once; cannot copy it")
    return row


def _row_for(template: dict[str, Any], template_key: str, key: str) -> dict[str, Any]:
    return {**template, "partition": key, "event": template["event"].replace(template_key, key)}
