"""The embedded instance's SQLite event log, writing batches of asset events in one transaction each."""

import os
from collections.abc import Mapping, Sequence
from typing import Any

from dagster import DagsterInvariantViolationError, EventLogEntry, Field, StringSource
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._serdes import ConfigurableClassData

from carbon_pipeline.storage.batching import enable_event_batches, index_asset_events, store_in_bulk


class BatchingSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` whose batches cost two transactions instead of two per event.

    Configured in ``dagster.yaml`` under ``event_log_storage`` (see the README); everything else,
    including the files on disk, is the stock storage's. ``base_dir`` defaults to where the stock
    instance keeps its event logs, ``$DAGSTER_HOME/history/runs``, so switching loses no history.
    """

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        super().__init__(base_dir, inst_data)
        enable_event_batches()

    @classmethod
    def config_type(cls) -> Mapping[str, Any]:
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> "BatchingSqliteEventLogStorage":
        return cls(config_value.get("base_dir") or _stock_event_log_directory(), inst_data)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        store_in_bulk(events, self._store_asset_events, self.store_event)

    def _store_asset_events(self, events: Sequence[EventLogEntry]) -> None:
        """The run's shard first, then the cross-run index with its tags, as ``store_event`` orders them."""
        rows = [self._event_to_row(event) for event in events]
        with self.run_connection(events[0].run_id) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)
        with self.index_transaction() as conn:
            returning = SqlEventLogStorageTable.insert().returning(
                SqlEventLogStorageTable.c.id, sort_by_parameter_order=True
            )
            event_ids = list(conn.execute(returning, rows).scalars())
            index_asset_events(self, conn, events, event_ids)


def _stock_event_log_directory() -> str:
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise DagsterInvariantViolationError(
            "BatchingSqliteEventLogStorage needs base_dir in its config, or DAGSTER_HOME to default to "
            "$DAGSTER_HOME/history/runs"
        )
    return os.path.join(home, "history", "runs")
