"""The embedded instance's SQLite event log, writing batches of asset events in one transaction each."""

import os
from collections.abc import Mapping, Sequence
from typing import Any

from dagster import DagsterInstance, EventLogEntry, Field, StringSource

from carbon_pipeline.dagster_private import ConfigurableClassData, SqlEventLogStorageTable, SqliteEventLogStorage
from carbon_pipeline.storage.batching import enable_event_batches, index_asset_events, store_in_bulk


class BatchingSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` whose batches cost two transactions instead of two per event.

    Configured in ``dagster.yaml`` under ``event_log_storage`` (see the README); everything else,
    including the files on disk, is the stock storage's. Without ``base_dir`` it keeps its files
    where the stock instance keeps its event logs, ``history/runs`` under the instance's root:
    ``$DAGSTER_HOME``, or the temporary home ``dagster dev`` makes when DAGSTER_HOME is unset. Only
    the instance knows that root, so the files are opened when the instance registers itself.
    """

    def __init__(self, base_dir: str | None = None, inst_data: ConfigurableClassData | None = None) -> None:
        self._opens_in_instance_root = base_dir is None
        self._config_data = inst_data
        if base_dir is not None:
            super().__init__(base_dir, inst_data)
        enable_event_batches()

    @classmethod
    def config_type(cls) -> Mapping[str, Any]:
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> "BatchingSqliteEventLogStorage":
        return cls(config_value.get("base_dir"), inst_data)

    def register_instance(self, instance: DagsterInstance) -> None:
        if self._opens_in_instance_root:
            super().__init__(instance_event_log_directory(instance.root_directory), self._config_data)
            self._opens_in_instance_root = False
        super().register_instance(instance)

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


def instance_event_log_directory(instance_root: str) -> str:
    """Where Dagster's default SQLite storage keeps an instance's event logs (``InstanceRef.config_defaults``)."""
    return os.path.join(instance_root, "history", "runs")
