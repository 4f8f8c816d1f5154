"""Request every interval missing from a trailing window, because Dagster schedules never catch up.

When the daemon was down, or InfluxDB or WattTime was, the schedule's ticks are gone for good. This
sensor compares what should be stored with what Dagster has materialized and requests the
difference as single-run ranges (one WattTime call per 30 days), newest first. It never requests an
interval a queued or running run already covers, keeps at most ``max_runs`` of its runs in flight
so neither the run queue nor WattTime's limits are flooded, stands aside while a backfill of the
asset is running, and does not keep hammering an interval whose data was refused: refused ranges are
retried one interval at a time, so one bad point cannot hold back its neighbours, and a refused
single interval waits ``refused_retry_after`` before it is tried again. A run that is starting or
running but has recorded nothing for ``stalled_after`` is not trusted: its worker died with no one
left to report it (its code server died too, or the host), so its intervals are requested again.
Each tick logs what was missing, per region, and what it requested or why it requested nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import dagster as dg

from carbon_pipeline.access_gate import requestable
from carbon_pipeline.coverage import DueIntervals, due_intervals, materialized_starts, regions_of
from carbon_pipeline.dagster_private import BulkActionStatus, UnresolvedAssetJobDefinition
from carbon_pipeline.partitions import RegionWindow, contiguous_windows, format_window, region_range_tags
from carbon_pipeline.run_outcomes import RunOutcome, run_covers, run_outcome, run_windows
from carbon_pipeline.sensors.tick_log import listed, skipped
from carbon_pipeline.watttime.access import HISTORICAL

SENSOR_NAME = "carbon_intensity_gap_filler"
TRIGGER_TAG = "carbon/trigger"
TRIGGER = "gap_fill"
MAX_RUN_INTERVALS = 30 * 96  # 30 days of 15-minute intervals: one WattTime call
DEFAULT_REFUSED_RETRY_AFTER = timedelta(hours=6)
RUN_LOOKUP_LIMIT = 1000
DEFAULT_STALLED_AFTER = timedelta(minutes=30)
# Statuses whose run worker should be recording events; a queued run may wait as long as the queue is.
RUNNING_STATUSES = frozenset({dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED})
WAITING_STATUSES = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


@dataclass(frozen=True)
class SourceDepth:
    """How far back a source serves data: intervals starting before ``first_served(now)`` are never requested,
    and each tick counts them per region under ``reason`` (``not available from this source (...)``)."""

    first_served: Callable[[datetime], datetime]
    reason: str

    def unavailable(self, due: DueIntervals, regions: Iterable[str], now: datetime) -> tuple[DueIntervals, str | None]:
        """The due intervals the source can serve, and the tick's note on those it cannot."""
        first = min(max(due.first, self.first_served(now)), due.end)
        count = len(replace(due, end=first).starts())
        if not count:
            return due, None
        counts = [f"{region} {count}" for region in regions]  # the same window for every region
        before = first.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
        note = f"Not requested, {self.reason}: the interval(s) before {before}, per region: {listed(counts)}."
        return replace(due, first=first), note


@dataclass(frozen=True)
class GapFillPlan:
    """What one tick requests, and why it requested nothing more."""

    windows: tuple[RegionWindow, ...]
    missing_by_region: Mapping[str, int]
    held_back_intervals: int
    reason: str
    windows_left_waiting: int = 0

    @property
    def missing_intervals(self) -> int:
        return sum(self.missing_by_region.values())

    def found(self, due: DueIntervals, regions: int) -> str:
        """What the tick found missing, per region when few have gaps, for its log."""
        if not due.starts():
            return "No interval is due yet."
        window = f"{format_window(due.first, due.end)} ({len(due.starts())} interval(s) per region)"
        if not self.missing_intervals:
            return f"Window {window}: nothing missing in {regions} region(s)."
        gaps = [f"{region} {count}" for region, count in self.missing_by_region.items() if count]
        return (
            f"Window {window}: {self.missing_intervals} interval(s) missing in {len(gaps)} of {regions} "
            f"region(s): {listed(gaps)}."
        )

    def requested(self) -> str:
        """What the tick requested, for its log; the rest waits for runs in flight to finish."""
        runs = "; ".join(window.describe() for window in self.windows)
        left = self.windows_left_waiting
        waiting = f"; {left} more window(s) wait for gap-filling runs in flight to finish" if left else ""
        return f"Requesting {len(self.windows)} run(s): {runs}{waiting}"


def build_gap_filler_sensor(
    job: UnresolvedAssetJobDefinition,
    asset_key: dg.AssetKey,
    partitions_def: dg.MultiPartitionsDefinition,
    lookback: timedelta,
    schedule_delay: timedelta,
    max_runs: int,
    name: str = SENSOR_NAME,
    stalled_after: timedelta = DEFAULT_STALLED_AFTER,
    refused_retry_after: timedelta = DEFAULT_REFUSED_RETRY_AFTER,
    endpoint: str | None = HISTORICAL,
    depth: SourceDepth | None = None,
) -> dg.SensorDefinition:
    """``schedule_delay`` is how long after an interval *ends* its scheduled run starts: negative for forecasts,
    whose run starts shortly after the interval begins. ``stalled_after`` is how long a starting or running
    run may record nothing before its intervals count as missing again; ``refused_retry_after`` how long a
    single interval whose data was refused waits before it is requested again. Only the regions the WattTime
    plan allows ``endpoint`` for are requested (``access_gate``; ``None`` for a source other than WattTime);
    the others are named in the tick's log. ``depth`` keeps intervals older than the source serves out."""

    @dg.sensor(
        name=name,
        job=job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Requests intervals missing from the last {lookback / timedelta(hours=1):g} hours for every region "
            f"as single-run ranges, at most {max_runs} run(s) in flight; skips intervals already queued or running."
        ),
    )
    def carbon_intensity_gap_filler(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        instance = context.instance
        if _backfill_running(instance, asset_key):
            return skipped(context.log, "a backfill of the asset is in progress; it fills its own range")
        due = due_intervals(partitions_def, datetime.now(UTC), lookback, schedule_delay)
        regions, left_out = _requestable(instance, endpoint, regions_of(partitions_def))
        for note in left_out:
            context.log.info(note)
        if not regions:
            return skipped(context.log, f"no configured region is in the WattTime plan for {endpoint}")
        if depth is not None:
            due, unavailable = depth.unavailable(due, regions, datetime.now(UTC))
            if unavailable:
                context.log.info(unavailable)
        waiting, stalled = _waiting_runs(instance, asset_key, partitions_def, datetime.now(UTC) - stalled_after)
        if stalled:
            context.log.info(_stalled_note(stalled, stalled_after))
        plan = plan_gap_fill(
            due,
            regions,
            materialized_starts(instance, asset_key, regions, due.first, due.end, due.step),
            in_flight=[window for run in waiting for window in run[1]],
            refused=_recently_refused(instance, asset_key, partitions_def, datetime.now(UTC) - refused_retry_after),
            room=max_runs - sum(1 for tags, _ in waiting if tags.get(TRIGGER_TAG) == TRIGGER),
        )
        context.log.info(plan.found(due, len(regions)))
        if not plan.windows:
            return skipped(context.log, plan.reason)
        context.log.info(plan.requested())
        return dg.SensorResult(run_requests=[gap_fill_request(window) for window in plan.windows])

    return carbon_intensity_gap_filler


def plan_gap_fill(
    due: DueIntervals,
    regions: Iterable[str],
    materialized: dict[str, set[datetime]],
    in_flight: Iterable[RegionWindow],
    refused: Iterable[RegionWindow],
    room: int,
) -> GapFillPlan:
    """The windows to request now: missing, not in flight, not recently refused, newest first, at most ``room``."""
    busy = _starts_by_region(in_flight)
    refused_alone, refused_in_range = _refused_starts(refused)
    candidates: list[RegionWindow] = []
    missing: dict[str, int] = {}
    held_back = 0
    for region in regions:
        stored, in_flight_now = materialized.get(region, set()), busy.get(region, set())
        absent = [start for start in due.starts() if start not in stored]
        missing[region] = len(absent)
        held = refused_alone.get(region, set())
        held_back += sum(1 for start in absent if start in held and start not in in_flight_now)
        isolate = refused_in_range.get(region, set())
        wanted = [start for start in absent if start not in held and start not in in_flight_now]
        candidates += _windows_to_request(region, wanted, isolate, due.step)
    candidates.sort(key=lambda window: window.end, reverse=True)
    chosen = tuple(candidates[: max(room, 0)])
    reason = _reason(sum(missing.values()), held_back, room - len(chosen), candidates[len(chosen) :])
    return GapFillPlan(chosen, missing, held_back, reason, len(candidates) - len(chosen))


def _windows_to_request(
    region: str, wanted: list[datetime], isolate: set[datetime], step: timedelta
) -> list[RegionWindow]:
    """Wanted intervals as ranges of at most ``MAX_RUN_INTERVALS``; intervals of a refused range go one at a time."""
    singles = [RegionWindow(region, start, start + step, step) for start in wanted if start in isolate]
    ranges = contiguous_windows(region, [start for start in wanted if start not in isolate], step)
    return singles + [piece for window in ranges for piece in window.pieces(MAX_RUN_INTERVALS)]


def _requestable(
    instance: dg.DagsterInstance, endpoint: str | None, configured: list[str]
) -> tuple[tuple[str, ...], list[str]]:
    """Every configured region for a source without a WattTime plan; else what the plan allows."""
    return (tuple(configured), []) if endpoint is None else requestable(instance, endpoint, configured)


def gap_fill_request(window: RegionWindow) -> dg.RunRequest:
    last = window.end - window.step
    return dg.RunRequest(tags=region_range_tags(window.region, window.start, last) | {TRIGGER_TAG: TRIGGER})


def _reason(missing: int, held_back: int, room: int, candidates: list[RegionWindow]) -> str:
    if not missing:
        return "no interval is missing"
    if candidates and room <= 0:
        return f"{missing} interval(s) missing; waiting for gap-filling runs in flight to finish"
    if held_back:
        return f"{held_back} interval(s) missing whose data was refused recently; retried later"
    return f"{missing} interval(s) missing, all already queued or running"


def _starts_by_region(windows: Iterable[RegionWindow]) -> dict[str, set[datetime]]:
    starts: dict[str, set[datetime]] = {}
    for window in windows:
        starts.setdefault(window.region, set()).update(window.starts())
    return starts


def _refused_starts(refused: Iterable[RegionWindow]) -> tuple[dict[str, set[datetime]], dict[str, set[datetime]]]:
    """Single refused intervals wait; intervals of refused ranges are retried one by one to find the bad ones."""
    windows = list(refused)
    alone = _starts_by_region(window for window in windows if window.interval_count == 1)
    in_range = _starts_by_region(window for window in windows if window.interval_count > 1)
    return alone, in_range


def _waiting_runs(
    instance: dg.DagsterInstance,
    asset_key: dg.AssetKey,
    partitions_def: dg.MultiPartitionsDefinition,
    silent_since: datetime,
) -> tuple[list[tuple[dict[str, str], list[RegionWindow]]], list[str]]:
    """Tags and windows of runs that are queued or running and cover partitions of the asset, and the ids
    of the running ones left out because they have recorded nothing since ``silent_since``."""
    records = instance.get_run_records(dg.RunsFilter(statuses=WAITING_STATUSES), limit=RUN_LOOKUP_LIMIT)
    waiting, stalled = [], []
    for record in records:
        run = record.dagster_run
        windows = run_windows(run.tags, partitions_def) if run_covers(run, asset_key) else []
        if not windows:
            continue
        if run.status in RUNNING_STATUSES and _last_activity(instance, record) < silent_since:
            stalled.append(run.run_id)
        else:
            waiting.append((dict(run.tags), windows))
    return waiting, stalled


def _last_activity(instance: dg.DagsterInstance, record: dg.RunRecord) -> datetime:
    """When the run last recorded an event (its worker is alive while it records them); without any, when
    its record last changed."""
    latest = instance.get_records_for_run(record.dagster_run.run_id, limit=1, ascending=False).records
    if latest:
        return datetime.fromtimestamp(latest[0].timestamp, UTC)
    return record.update_timestamp.astimezone(UTC)


def _stalled_note(run_ids: list[str], stalled_after: timedelta) -> str:
    minutes = stalled_after / timedelta(minutes=1)
    return (
        f"{len(run_ids)} run(s) starting or running have recorded nothing for {minutes:g} minute(s), so their "
        f"worker is taken for dead and their intervals for missing: {listed(run_ids)}."
    )


def _recently_refused(
    instance: dg.DagsterInstance,
    asset_key: dg.AssetKey,
    partitions_def: dg.MultiPartitionsDefinition,
    since: datetime,
) -> list[RegionWindow]:
    """Windows of regions whose run, finished after ``since``, failed for them in a way retrying soon cannot
    fix (rejected data, bad account); the other regions of those runs were stored or only need a retry."""
    records = instance.get_run_records(
        dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE], updated_after=since),
        limit=RUN_LOOKUP_LIMIT,
    )
    outcomes: list[RunOutcome | None] = [
        run_outcome(instance, record.dagster_run, record.update_timestamp, asset_key, partitions_def)
        for record in records
    ]
    return [window for outcome in outcomes if outcome for window in outcome.refused_windows]


def _backfill_running(instance: dg.DagsterInstance, asset_key: dg.AssetKey) -> bool:
    backfills = instance.get_backfills(status=BulkActionStatus.REQUESTED, limit=100)
    return any(backfill.asset_selection and asset_key in backfill.asset_selection for backfill in backfills)
