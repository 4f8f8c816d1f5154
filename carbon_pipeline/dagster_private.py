"""Every private Dagster name (``dagster._...``) the package uses, each with why no public API serves,
every Dagster method it calls that is neither private nor public (no underscore, but not in
Dagster's API reference), each behind a function here, and the one function that reaches into a
step's context (``materializations_in_batches``).

One import site makes a Dagster upgrade's breakage show up in one module, and its event-log
storage tests (carbon_pipeline_tests/deployment/test_event_log_storage.py) check the private
methods the batching storages call on top of these names.
"""

from collections.abc import Collection, Iterable, Iterator, Mapping
from uuid import uuid4

import dagster as dg

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

# What the gRPC client raises when no code server answers; Dagster does not export it.
from dagster._core.errors import DagsterUserCodeUnreachableError

# Marks events that the instance may store together, as Dagster marks the per-partition
# materializations it derives from an asset's output; without it, each event is its own write.
from dagster._core.events import DagsterEventBatchMetadata

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

# Prefix of the tags that carry each dimension of a multi-partition materialization's key; Dagster
# derives them only for the materializations of an output, and reads the key's dimensions back from them.
from dagster._core.storage.tags import MULTIDIMENSIONAL_PARTITION_PREFIX

# The code server's gRPC client: Dagster's only public probe, ``dagster api grpc-health-check``, asks
# whether the server answers, not whether its code loaded, and Dagster exports no client of its own.
from dagster._grpc.client import DagsterGrpcClient

# A storage's own dagster.yaml block, which a ConfigurableClass receives in ``from_config_value``.
from dagster._serdes import ConfigurableClassData

# What a code server answers, in place of its repositories, when its definitions failed to load.
from dagster._utils.error import SerializableErrorInfo


def event_log_storage(instance: dg.DagsterInstance) -> EventLogStorage:
    """The instance's event log. ``DagsterInstance.event_log_storage`` is not in the API reference; the
    history benchmark writes its synthetic materializations through it."""
    return instance.event_log_storage


def latest_materialization_ids(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, partition_keys: Collection[str]
) -> Mapping[str, int]:
    """The storage id of the latest materialization of each of ``partition_keys`` that has one.

    ``EventLogStorage.get_latest_storage_id_by_partition`` is the one call that looks up given keys
    only (one indexed query); the public ``get_materialized_partitions`` returns every key ever
    materialized, and ``fetch_materializations`` deserializes every event it returns.
    """
    return instance.event_log_storage.get_latest_storage_id_by_partition(
        asset_key, dg.DagsterEventType.ASSET_MATERIALIZATION, set(partition_keys)
    )


def code_location_load_error(host: str, port: int) -> SerializableErrorInfo | None:
    """The load error of the code server at ``host:port``, or None when it serves its definitions.

    ``ListRepositories`` is what the webserver and the daemon ask a code location first; ``dagster
    code-server start`` keeps running after its code failed to load and answers it with the load
    error instead. Raises ``DagsterUserCodeUnreachableError`` when nothing answers at all.
    """
    answer = dg.deserialize_value(DagsterGrpcClient(port=port, host=host).list_repositories())
    return answer if isinstance(answer, SerializableErrorInfo) else None


__all__ = [
    "MULTIDIMENSIONAL_PARTITION_PREFIX",
    "AssetCheckEvaluationTargetMaterializationData",
    "BulkActionStatus",
    "ConfigurableClassData",
    "DagsterEventBatchMetadata",
    "DagsterUserCodeUnreachableError",
    "EventLogStorage",
    "RawMetadataValue",
    "SerializableErrorInfo",
    "SqlEventLogStorage",
    "SqlEventLogStorageTable",
    "SqliteEventLogStorage",
    "UnresolvedAssetJobDefinition",
    "code_location_load_error",
    "event_log_storage",
    "latest_materialization_ids",
    "materializations_in_batches",
]


def materializations_in_batches(
    context: dg.AssetExecutionContext, materializations: Iterable[dg.AssetMaterialization]
) -> Iterator[dg.DagsterEvent]:
    """Each materialization as the step's event, in the given order, stored in batches: yield them from the asset.

    A single-run backfill materializes each partition with metadata of its own, in time order, so
    that the newest interval is the asset's latest materialization. No public way serves: one
    ``MaterializeResult`` records every partition in the order of a set, with the same metadata
    unless ``context.add_asset_metadata(partition_key=...)`` adds each one's (which works out the
    run's whole range again on every call: quadratic in a year's keys), and ``context.log_event``
    stores each event on its own (two transactions each, about 14 ms on SQLite: eight minutes for a
    year of intervals). Dagster's own output path builds
    the events as here, from the step context with batch metadata, so the instance stores them
    ``DAGSTER_EVENT_BATCH_SIZE`` at a time (see carbon_pipeline/storage/batching.py) and in order; the
    last one closes the batch. Yielded from the asset, the events also reach the run's event stream,
    as those of ``context.log_event`` do.
    """
    step_context = context.get_step_execution_context()
    batch = DagsterEventBatchMetadata(str(uuid4()), is_end=False)
    pending: dg.AssetMaterialization | None = None
    for materialization in materializations:
        if pending is not None:
            yield dg.DagsterEvent.asset_materialization(step_context, pending, batch)
        pending = materialization
    if pending is not None:
        yield dg.DagsterEvent.asset_materialization(step_context, pending, batch._replace(is_end=True))
