"""The production PostgreSQL event log, writing every batch of asset events with one statement.

dagster-postgres batches materializations but stores planned-materialization events one by one:
a year's single-run backfill of one region plans 35,040 partitions before its run starts.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from dagster import EventLogEntry
from dagster_postgres import PostgresEventLogStorage
from dagster_postgres.auth import PgTokenProvider
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

from carbon_pipeline.dagster_private import ConfigurableClassData, SqlEventLogStorageTable
from carbon_pipeline.storage.batching import enable_event_batches, index_asset_events, store_in_bulk


class BatchingPostgresEventLogStorage(PostgresEventLogStorage):
    """``PostgresEventLogStorage`` that also batches planned-materialization events.

    Configured in ``dagster.yaml`` under ``event_log_storage`` with the same ``postgres_db``
    block as the stock storage (see ``deploy/dagster.yaml``); tables and reads are the stock ones.
    """

    def __init__(
        self,
        postgres_url: str,
        should_autocreate_tables: bool = True,
        inst_data: ConfigurableClassData | None = None,
        token_provider: PgTokenProvider | None = None,
    ) -> None:
        super().__init__(postgres_url, should_autocreate_tables, inst_data, token_provider)
        enable_event_batches()

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> "BatchingPostgresEventLogStorage":
        return cls(
            pg_url_from_config(config_value),
            config_value.get("should_autocreate_tables", True),
            inst_data,
            get_token_provider_from_config(config_value),
        )

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        store_in_bulk(events, self._store_asset_events, self.store_event)

    def _store_asset_events(self, events: Sequence[EventLogEntry]) -> None:
        with self._connect() as conn:
            inserted = conn.execute(self.prepare_insert_event_batch(events).returning(SqlEventLogStorageTable.c.id))
            event_ids = list(inserted.scalars())
        with self.index_transaction() as conn:
            index_asset_events(self, conn, events, event_ids)
