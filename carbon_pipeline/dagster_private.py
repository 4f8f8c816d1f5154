"""Every private Dagster name (``dagster._...``) the package uses, each with why no public API serves,
and every Dagster method it calls that is neither private nor public (no underscore, but not in
Dagster's API reference), each behind a function here.

One import site makes a Dagster upgrade's breakage show up in one module, and its event-log
storage tests (carbon_pipeline_tests/deployment/test_event_log_storage.py) check the private
methods the batching storages call on top of these names.
"""

from collections.abc import Collection, Mapping

from dagster import AssetKey, DagsterEventType, DagsterInstance

# The materialization an asset check evaluation was made on: the freshness check hands Dagster its
# evaluation ready-made (see sensors/freshness.py), and Dagster exports no name for this part of it.
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

# Metadata values as ``metadata=`` accepts them (str, int, float, MetadataValue, ...): Dagster
# exports no name for the type of that argument, only ``MetadataValue`` for the wrapped values.
from dagster._core.definitions.metadata import RawMetadataValue

# What ``dg.define_asset_job`` returns; Dagster exports the function but not its return type,
# which the schedule and the gap-filling sensor take as an argument.
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

# The status ``DagsterInstance.get_backfills`` filters by: the public method takes this enum and
# Dagster exports no public one (the gap-filling sensor skips ticks while backfills are requested).
from dagster._core.execution.backfill import BulkActionStatus

# The stock SQLite event log the batching storage extends, and the base class of both batching
# storages: Dagster documents them as configured in dagster.yaml, not as classes to subclass.
from dagster._core.storage.event_log import SqliteEventLogStorage

# The abstract event log an instance keeps, the type ``DagsterInstance.event_log_storage`` returns.
from dagster._core.storage.event_log.base import EventLogStorage

# The event-log table the batching storages insert a batch of rows into with one statement.
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage

# A storage's own dagster.yaml block, which a ConfigurableClass receives in ``from_config_value``.
from dagster._serdes import ConfigurableClassData


def event_log_storage(instance: DagsterInstance) -> EventLogStorage:
    """The instance's event log. ``DagsterInstance.event_log_storage`` is not in the API reference; the
    history benchmark writes its synthetic materializations through it."""
    return instance.event_log_storage


def latest_materialization_ids(
    instance: DagsterInstance, asset_key: AssetKey, partition_keys: Collection[str]
) -> Mapping[str, int]:
    """The storage id of the latest materialization of each of ``partition_keys`` that has one.

    ``EventLogStorage.get_latest_storage_id_by_partition`` is the one call that looks up given keys
    only (one indexed query); the public ``get_materialized_partitions`` returns every key ever
    materialized, and ``fetch_materializations`` deserializes every event it returns.
    """
    return instance.event_log_storage.get_latest_storage_id_by_partition(
        asset_key, DagsterEventType.ASSET_MATERIALIZATION, set(partition_keys)
    )


__all__ = [
    "AssetCheckEvaluationTargetMaterializationData",
    "BulkActionStatus",
    "ConfigurableClassData",
    "EventLogStorage",
    "RawMetadataValue",
    "SqlEventLogStorage",
    "SqlEventLogStorageTable",
    "SqliteEventLogStorage",
    "UnresolvedAssetJobDefinition",
    "event_log_storage",
    "latest_materialization_ids",
]
