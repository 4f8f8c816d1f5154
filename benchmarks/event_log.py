"""What a run leaves in the event log: its events as the storage keeps them, and the storage's size on disk.

A single-run backfill of a year records one materialization per interval, 35,040 of them; what
each one carries (its metadata, its tags) is paid for once per interval in the event log, in the
UI's queries and in every backup. Read back after ``dagster dev`` has stopped, from the same
instance file the deployment uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import psycopg2

from benchmarks.stack import Storage, instance_in

RECORDS_PER_PAGE = 5000
# The tables a PostgreSQL instance keeps events and their indexes in (dagster-postgres's schema).
POSTGRES_EVENT_TABLES = ("event_logs", "asset_event_tags", "asset_keys")


@dataclass(frozen=True)
class EventLogFigures:
    events: int
    event_bytes: int
    materializations: int
    materialization_bytes: int
    disk_bytes: int

    @property
    def bytes_per_materialization(self) -> float:
        return self.materialization_bytes / max(1, self.materializations)

    def rows(self) -> list[tuple[str, str]]:
        return [
            ("events of the run / serialized (MB)", f"{self.events:,} / {self.event_bytes / 1e6:.1f}"),
            ("materialization event, serialized (bytes, mean)", f"{self.bytes_per_materialization:,.0f}"),
            ("event log on disk after the backfill (MB)", f"{self.disk_bytes / 1e6:.1f}"),
        ]


def measure_event_log(storage: Storage, home: Path, instance_env: Mapping[str, str], run_id: str) -> EventLogFigures:
    """The run's events, each as serialized into the event log, and the whole event log's size on disk."""
    counts = {"events": 0, "event_bytes": 0, "materializations": 0, "materialization_bytes": 0}
    with instance_in(home, instance_env) as instance:
        cursor = None
        while True:
            page = instance.get_records_for_run(run_id, cursor=cursor, limit=RECORDS_PER_PAGE)
            for record in page.records:
                size = len(dg.serialize_value(record.event_log_entry))
                counts["events"] += 1
                counts["event_bytes"] += size
                if record.event_log_entry.dagster_event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
                    counts["materializations"] += 1
                    counts["materialization_bytes"] += size
            cursor = page.cursor
            if not page.has_more:
                break
    disk = _sqlite_bytes(home) if storage == "sqlite" else _postgres_bytes(instance_env)
    return EventLogFigures(disk_bytes=disk, **counts)


def _sqlite_bytes(home: Path) -> int:
    """The embedded instance's event-log files: one per run plus the cross-run index (history/runs)."""
    return sum(path.stat().st_size for path in (home / "history").rglob("*.db*"))


def _postgres_bytes(instance_env: Mapping[str, str]) -> int:
    """The event tables with their indexes and TOAST, as PostgreSQL accounts for them."""
    connection = psycopg2.connect(
        host=instance_env["DAGSTER_PG_HOST"],
        port=instance_env["DAGSTER_PG_PORT"],
        user=instance_env["DAGSTER_PG_USERNAME"],
        password=instance_env["DAGSTER_PG_PASSWORD"],
        dbname=instance_env["DAGSTER_PG_DB"],
    )
    try:
        with connection.cursor() as cursor:
            sizes = " + ".join(f"pg_total_relation_size('{table}')" for table in POSTGRES_EVENT_TABLES)
            cursor.execute(f"SELECT {sizes}")
            (total,) = cursor.fetchone()
            return int(total)
    finally:
        connection.close()
