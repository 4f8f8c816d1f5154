"""Every private Dagster name (``dagster._...``) the package uses, each with why no public API serves.

One import site makes a Dagster upgrade's breakage show up in one module, and its event-log
storage tests (carbon_pipeline_tests/deployment/test_event_log_storage.py) check the private
methods the batching storages call on top of these names.
"""

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

# The event-log table the batching storages insert a batch of rows into with one statement.
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage

# A storage's own dagster.yaml block, which a ConfigurableClass receives in ``from_config_value``.
from dagster._serdes import ConfigurableClassData

__all__ = [
    "BulkActionStatus",
    "ConfigurableClassData",
    "RawMetadataValue",
    "SqlEventLogStorage",
    "SqlEventLogStorageTable",
    "SqliteEventLogStorage",
    "UnresolvedAssetJobDefinition",
]
