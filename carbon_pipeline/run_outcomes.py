"""Why a run of the carbon-intensity asset ended the way it did, as recorded on the Dagster instance.

Alerting and gap filling act on the *reason* a run failed: a write the database refused is ours
to page on, a WattTime outage heals itself and only needs a retry later, and data rejected by
validation needs a person. The asset states the reason in its ``Failure`` metadata; this module
writes it there and reads it back, together with the regions and intervals the run covered and,
for a run of several regions, which of them failed: the others were stored and materialized.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

import dagster as dg

from carbon_pipeline.dagster_private import RawMetadataValue
from carbon_pipeline.partitions import (
    RANGE_END_TAG,
    RANGE_START_TAG,
    REGION_DIMENSION,
    RegionWindow,
    interval_start,
    interval_step,
    region_windows,
)

FAILURE_KIND = "failure_kind"
RETRYABLE = "retryable"
FAILED_REGIONS = "failed_regions"
PARTITION_TAG = "dagster/partition"
# Jobs tag their runs with the asset they materialize: the measurement and forecast assets share partition
# keys, so a run's partition tags alone cannot say whose run it is.
ASSET_TAG = "carbon/asset"
UNTAGGED_ASSET = "carbon_intensity"


class FailureKind(StrEnum):
    INFLUXDB_WRITE = "influxdb_write"
    WATTTIME = "watttime"
    DATA_INCOMPLETE = "data_incomplete"
    DATA_REJECTED = "data_rejected"
    # Asked for an interval the source serves no more (the signal index of an interval that is over): not an
    # outage of WattTime or InfluxDB, so it keeps a streak of its own and never feeds theirs.
    NOT_AVAILABLE = "not_available"
    OTHER = "other"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    FailureKind.INFLUXDB_WRITE: "InfluxDB writes failing",
    FailureKind.WATTTIME: "WattTime unavailable or refusing requests",
    FailureKind.DATA_INCOMPLETE: "WattTime data incomplete",
    FailureKind.DATA_REJECTED: "WattTime data rejected by validation",
    FailureKind.NOT_AVAILABLE: "intervals no longer available from the source",
    FailureKind.OTHER: "runs failing",
}


# A run that failed in several ways states whichever of its kinds comes first here: the one that
# needs a person soonest. Sensors read each region's own kind from ``failed_regions``.
URGENCY = (
    FailureKind.INFLUXDB_WRITE,
    FailureKind.DATA_REJECTED,
    FailureKind.WATTTIME,
    FailureKind.DATA_INCOMPLETE,
    FailureKind.NOT_AVAILABLE,
    FailureKind.OTHER,
)


@dataclass(frozen=True)
class RegionFailure:
    """Why some regions of a run were not stored; ``message`` names each region, interval and cause."""

    regions: tuple[str, ...]
    kind: FailureKind
    message: str
    retryable: bool


def pipeline_failure(failures: Sequence[RegionFailure]) -> dg.Failure:
    """A run failure that says why it happened, region by region, so sensors can tell a database
    outage from bad data and a region that failed from one that was stored.

    ``failed_regions`` maps each failed region to its own kind and retryability. The run as a whole
    states the most urgent kind (``URGENCY``) and is retryable only if every failure is.
    """
    retryable = all(failure.retryable for failure in failures)
    failed = {
        region: {"kind": failure.kind.value, RETRYABLE: failure.retryable}
        for failure in failures
        for region in failure.regions
    }
    metadata: dict[str, RawMetadataValue] = {
        FAILURE_KIND: min((failure.kind for failure in failures), key=URGENCY.index).value,
        RETRYABLE: retryable,
        FAILED_REGIONS: dg.MetadataValue.json(dict(sorted(failed.items()))),
    }
    description = "\n".join(failure.message for failure in failures)
    return dg.Failure(description=description, metadata=metadata, allow_retries=retryable)


@dataclass(frozen=True)
class FailedRegion:
    """Why one region of a run failed, and whether a retry may succeed: the gap filler waits if not."""

    kind: FailureKind
    retryable: bool


@dataclass(frozen=True)
class RunOutcome:
    """One finished run of the asset: what it covered, when it ended and, if it failed, why and where.

    A failed run of several regions may have stored some of them: only the regions in ``failed``
    failed, each for its own reason; the others succeeded as in a successful run.
    """

    run_id: str
    finished_at: datetime
    windows: tuple[RegionWindow, ...]
    failure: FailureKind | None
    message: str
    retryable: bool
    failed: Mapping[str, FailedRegion] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.failure is None

    @property
    def regions(self) -> tuple[str, ...]:
        return tuple(sorted({window.region for window in self.windows}))

    @property
    def failed_regions(self) -> frozenset[str]:
        return frozenset(self.failed)

    @property
    def refused_windows(self) -> tuple[RegionWindow, ...]:
        """Windows of the regions whose failure retrying cannot fix soon."""
        return tuple(window for window in self.windows if self._refused(window.region))

    def windows_of(self, region: str) -> tuple[RegionWindow, ...]:
        return tuple(window for window in self.windows if window.region == region)

    def message_for(self, region: str) -> str:
        """The lines of the failure message about ``region`` (``RegionWindow.describe`` names it so)."""
        lines = [line for line in self.message.splitlines() if f"region {region}," in line]
        return "\n".join(lines) or self.message

    def _refused(self, region: str) -> bool:
        return region in self.failed and not self.failed[region].retryable


def run_outcome(
    instance: dg.DagsterInstance,
    run: dg.DagsterRun,
    finished_at: datetime,
    asset_key: dg.AssetKey,
    partitions_def: dg.MultiPartitionsDefinition,
) -> RunOutcome | None:
    """The outcome of ``run``, or None when it did not materialize partitions of ``asset_key``."""
    if not run_covers(run, asset_key):
        return None
    windows = run_windows(run.tags, partitions_def)
    if not windows:
        return None
    if run.status == dg.DagsterRunStatus.SUCCESS:
        return RunOutcome(run.run_id, finished_at, tuple(windows), None, "", retryable=False)
    reason = _failure_reason(instance, run.run_id)
    failed = _failed_regions({window.region for window in windows}, reason)
    return RunOutcome(run.run_id, finished_at, tuple(windows), reason.kind, reason.message, reason.retryable, failed)


def _failed_regions(covered: set[str], reason: _Reason) -> dict[str, FailedRegion]:
    """The regions the failure names; all the run covered, for the run's reason, when it names none (a crash)."""
    named = {region: failed for region, failed in reason.regions.items() if region in covered}
    return named or {region: FailedRegion(reason.kind, reason.retryable) for region in covered}


def run_covers(run: dg.DagsterRun, asset_key: dg.AssetKey) -> bool:
    """Whether ``run`` materializes ``asset_key``: its asset selection says so, else its job's ``ASSET_TAG``.

    A run launched from an asset page carries its selection; a job's runs (schedule, sensors) carry the
    job's tag, and a run with neither is the measurement asset's, as every run was before forecasts.
    """
    if run.asset_selection:
        return asset_key in run.asset_selection
    return run.tags.get(ASSET_TAG, UNTAGGED_ASSET) == asset_key.to_user_string()


def run_windows(tags: Mapping[str, str], partitions_def: dg.MultiPartitionsDefinition) -> list[RegionWindow]:
    """The region windows a run covers, from the partition tags Dagster puts on every partitioned run."""
    regions = set(partitions_def.get_partitions_def_for_dimension(REGION_DIMENSION).get_partition_keys())
    try:
        if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
            return _range_windows(tags[RANGE_START_TAG], tags[RANGE_END_TAG], partitions_def, regions)
        if PARTITION_TAG in tags:
            first, step = _parse_key(tags[PARTITION_TAG], regions), interval_step(partitions_def)
            return [RegionWindow(first[0], first[1], first[1] + step, step)]
    except ValueError:
        return []
    return []


def _range_windows(
    start: str, end: str, partitions_def: dg.MultiPartitionsDefinition, regions: set[str]
) -> list[RegionWindow]:
    first, last, step = _parse_key(start, regions), _parse_key(end, regions), interval_step(partitions_def)
    if first[0] == last[0]:
        return [RegionWindow(first[0], first[1], last[1] + step, step)]
    keys = partitions_def.get_partition_keys_in_range(dg.PartitionKeyRange(start, end))
    return region_windows((key for key in keys if isinstance(key, dg.MultiPartitionKey)), step)


def _parse_key(key: str, regions: set[str]) -> tuple[str, datetime]:
    """``REGION|YYYY-MM-DD-HH:MM`` (Dagster orders dimensions by name) into region and interval start."""
    region, _, interval = key.partition("|")
    if region not in regions:
        raise ValueError(f"not a partition of this asset: {key!r}")
    return region, interval_start(interval)


@dataclass(frozen=True)
class _Reason:
    kind: FailureKind
    message: str
    retryable: bool
    regions: Mapping[str, FailedRegion] = field(default_factory=dict)  # empty: every region failed


def _failure_reason(instance: dg.DagsterInstance, run_id: str) -> _Reason:
    """The failure kind the asset declared, else OTHER with whatever Dagster recorded (crash, cancel)."""
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        data = entry.dagster_event.step_failure_data if entry.dagster_event else None
        if data is None:
            continue
        user = data.user_failure_data
        if user is not None and FAILURE_KIND in user.metadata:
            return _declared_reason(user.metadata, user.description)
        if data.error is not None:
            return _Reason(FailureKind.OTHER, data.error.message.strip(), True)
    return _Reason(FailureKind.OTHER, _run_failure_message(instance, run_id), True)


def _declared_reason(metadata: Mapping[str, dg.MetadataValue], description: str | None) -> _Reason:
    kind = FailureKind(str(metadata[FAILURE_KIND].value))
    retryable = bool(metadata[RETRYABLE].value) if RETRYABLE in metadata else True
    named = metadata[FAILED_REGIONS].value if FAILED_REGIONS in metadata else None
    return _Reason(kind, description or kind.label, retryable, _named_regions(named))


def _named_regions(named: object) -> dict[str, FailedRegion]:
    if not isinstance(named, Mapping):
        return {}
    return {
        str(region): FailedRegion(FailureKind(str(failed["kind"])), bool(failed[RETRYABLE]))
        for region, failed in named.items()
    }


def _run_failure_message(instance: dg.DagsterInstance, run_id: str) -> str:
    entries = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    return entries[-1].message if entries else "the run ended without a recorded reason"
