"""Bulk writes of asset events, shared by the SQLite and PostgreSQL event-log storages.

A single-run backfill of one region over a year plans and materializes 35,040 partitions, and
Dagster records one event per partition for each. Its stock SQL storages write them one at a
time (a connection and a commit per event, about 14 ms each on SQLite: eight minutes of
bookkeeping per year of intervals against about a second of real work). Dagster already hands
such events to ``store_event_batch`` in batches when ``DAGSTER_EVENT_BATCH_SIZE`` is set; the
storages here honour that with one statement and one transaction per batch.
"""

import os
from collections.abc import Callable, Iterator, Sequence
from itertools import groupby

from dagster import DagsterEventType, EventLogEntry
from sqlalchemy.engine import Connection

from carbon_pipeline.dagster_private import SqlEventLogStorage

EVENT_BATCH_SIZE_VARIABLE = "DAGSTER_EVENT_BATCH_SIZE"
DEFAULT_EVENT_BATCH_SIZE = 2000

_BULK_EVENT_TYPES = frozenset(
    {
        DagsterEventType.ASSET_MATERIALIZATION,
        DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
        DagsterEventType.ASSET_OBSERVATION,
    }
)


def enable_event_batches() -> None:
    """Ask Dagster to batch events in every process that loads a batching storage.

    Dagster reads the variable per event in the process that reports it (run worker, daemon,
    webserver), and a batching storage is only useful with it set; an operator's own value wins.
    """
    os.environ.setdefault(EVENT_BATCH_SIZE_VARIABLE, str(DEFAULT_EVENT_BATCH_SIZE))


def store_in_bulk(
    events: Sequence[EventLogEntry],
    store_bulk: Callable[[Sequence[EventLogEntry]], None],
    store_one: Callable[[EventLogEntry], None],
) -> None:
    """Store runs of asset events of one run in bulk, anything else one by one, in the given order."""
    for run_id, group in groupby(events, key=_bulk_run_id):
        same_kind = list(group)
        if run_id is None or len(same_kind) == 1:
            for event in same_kind:
                store_one(event)
        else:
            store_bulk(same_kind)


def index_asset_events(
    storage: SqlEventLogStorage, conn: Connection, events: Sequence[EventLogEntry], event_ids: Sequence[int]
) -> None:
    """Tags of every event, and each asset's latest-event record once, from its last event in the batch."""
    # The storage's own indexing steps, as its store_event runs them, but once per batch.
    storage._store_asset_event_tags(conn, events, event_ids)
    for event, event_id in _last_per_asset(events, event_ids):
        storage._store_asset_event(conn, event, event_id)


def _bulk_run_id(event: EventLogEntry) -> str | None:
    dagster_event = event.dagster_event
    if dagster_event is None or dagster_event.asset_key is None:
        return None
    return event.run_id if dagster_event.event_type in _BULK_EVENT_TYPES else None


def _last_per_asset(events: Sequence[EventLogEntry], event_ids: Sequence[int]) -> Iterator[tuple[EventLogEntry, int]]:
    """The last event of each kind per asset, in stored order: what one-by-one updates would leave behind."""
    last: dict[tuple[str, str], int] = {}
    for position, event in enumerate(events):
        dagster_event = event.get_dagster_event()
        last[(dagster_event.event_type_value, str(dagster_event.asset_key))] = position
    for position in sorted(last.values()):
        yield events[position], event_ids[position]
