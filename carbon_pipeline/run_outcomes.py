"""Why a run of the carbon-intensity asset ended the way it did, as recorded on the Dagster instance.

Alerting and gap filling act on the *reason* a run failed: a write the database refused is ours
to page on, a WattTime outage heals itself and only needs a retry later, and data rejected by
validation needs a person. The asset states the reason in its ``Failure`` metadata; this module
writes it there and reads it back, together with the regions and intervals the run covered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import dagster as dg

from carbon_pipeline.partitions import (
    INTERVAL,
    REGION_DIMENSION,
    RegionWindow,
    interval_start,
    region_windows,
)

FAILURE_KIND = "failure_kind"
RETRYABLE = "retryable"
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


class FailureKind(StrEnum):
    INFLUXDB_WRITE = "influxdb_write"
    WATTTIME = "watttime"
    DATA_INCOMPLETE = "data_incomplete"
    DATA_REJECTED = "data_rejected"
    OTHER = "other"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    FailureKind.INFLUXDB_WRITE: "InfluxDB writes failing",
    FailureKind.WATTTIME: "WattTime unavailable or refusing requests",
    FailureKind.DATA_INCOMPLETE: "WattTime data incomplete",
    FailureKind.DATA_REJECTED: "WattTime data rejected by validation",
    FailureKind.OTHER: "runs failing",
}


def pipeline_failure(kind: FailureKind, description: str, *, retryable: bool) -> dg.Failure:
    """A run failure that says why it happened, so sensors can tell a database outage from bad data."""
    return dg.Failure(
        description=description,
        metadata={FAILURE_KIND: kind.value, RETRYABLE: retryable},
        allow_retries=retryable,
    )


@dataclass(frozen=True)
class RunOutcome:
    """One finished run of the asset: what it covered, when it ended and, if it failed, why."""

    run_id: str
    finished_at: datetime
    windows: tuple[RegionWindow, ...]
    failure: FailureKind | None
    message: str
    retryable: bool

    @property
    def succeeded(self) -> bool:
        return self.failure is None

    @property
    def regions(self) -> tuple[str, ...]:
        return tuple(sorted({window.region for window in self.windows}))

    def windows_of(self, region: str) -> tuple[RegionWindow, ...]:
        return tuple(window for window in self.windows if window.region == region)


def run_outcome(
    instance: dg.DagsterInstance,
    run: dg.DagsterRun,
    finished_at: datetime,
    asset_key: dg.AssetKey,
    partitions_def: dg.MultiPartitionsDefinition,
) -> RunOutcome | None:
    """The outcome of ``run``, or None when it did not materialize partitions of ``asset_key``."""
    if run.asset_selection and asset_key not in run.asset_selection:
        return None
    windows = run_windows(run.tags, partitions_def)
    if not windows:
        return None
    if run.status == dg.DagsterRunStatus.SUCCESS:
        return RunOutcome(run.run_id, finished_at, tuple(windows), None, "", retryable=False)
    kind, message, retryable = _failure_reason(instance, run.run_id)
    return RunOutcome(run.run_id, finished_at, tuple(windows), kind, message, retryable)


def run_windows(tags: Mapping[str, str], partitions_def: dg.MultiPartitionsDefinition) -> list[RegionWindow]:
    """The region windows a run covers, from the partition tags Dagster puts on every partitioned run."""
    regions = set(partitions_def.get_partitions_def_for_dimension(REGION_DIMENSION).get_partition_keys())
    try:
        if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
            return _range_windows(tags[RANGE_START_TAG], tags[RANGE_END_TAG], partitions_def, regions)
        if PARTITION_TAG in tags:
            first = _parse_key(tags[PARTITION_TAG], regions)
            return [RegionWindow(first[0], first[1], first[1] + INTERVAL)]
    except ValueError:
        return []
    return []


def _range_windows(
    start: str, end: str, partitions_def: dg.MultiPartitionsDefinition, regions: set[str]
) -> list[RegionWindow]:
    first, last = _parse_key(start, regions), _parse_key(end, regions)
    if first[0] == last[0]:
        return [RegionWindow(first[0], first[1], last[1] + INTERVAL)]
    keys = partitions_def.get_partition_keys_in_range(dg.PartitionKeyRange(start, end))
    return region_windows(key for key in keys if isinstance(key, dg.MultiPartitionKey))


def _parse_key(key: str, regions: set[str]) -> tuple[str, datetime]:
    """``REGION|YYYY-MM-DD-HH:MM`` (Dagster orders dimensions by name) into region and interval start."""
    region, _, interval = key.partition("|")
    if region not in regions:
        raise ValueError(f"not a partition of this asset: {key!r}")
    return region, interval_start(interval)


def _failure_reason(instance: dg.DagsterInstance, run_id: str) -> tuple[FailureKind, str, bool]:
    """The failure kind the asset declared, else OTHER with whatever Dagster recorded (crash, cancel)."""
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        data = entry.dagster_event.step_failure_data if entry.dagster_event else None
        if data is None:
            continue
        user = data.user_failure_data
        if user is not None and FAILURE_KIND in user.metadata:
            kind = FailureKind(str(user.metadata[FAILURE_KIND].value))
            retryable = bool(user.metadata[RETRYABLE].value) if RETRYABLE in user.metadata else True
            return kind, user.description or kind.label, retryable
        if data.error is not None:
            return FailureKind.OTHER, data.error.message.strip(), True
    return FailureKind.OTHER, _run_failure_message(instance, run_id), True


def _run_failure_message(instance: dg.DagsterInstance, run_id: str) -> str:
    entries = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    return entries[-1].message if entries else "the run ended without a recorded reason"
