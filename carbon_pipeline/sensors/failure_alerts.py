"""Alert once per streak of failed runs per region, and once more when the region recovers.

Streaks are kept per region and per failure kind, so a WattTime outage or rejected data neither
advances nor resets the count of InfluxDB write failures; each kind gets its own alert. A run covers
every region of its interval, and when it fails only the regions its failure names have failed,
each for its own reason: the others were stored, which ends their streaks as a successful run
would. Everything the sensor knows lives in its cursor: a daemon restart neither repeats an alert
nor forgets a streak. Each tick logs the runs it read, the alerts it sent, and the failures it did
not alert (yet) and why.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import dagster as dg

from carbon_pipeline.notifier import Alert, AlertEvent, AlertNotifier
from carbon_pipeline.partitions import format_window
from carbon_pipeline.run_outcomes import FailureKind, RunOutcome, run_outcome
from carbon_pipeline.sensors.tick_log import listed, skipped

SENSOR_NAME = "carbon_intensity_failure_alerts"
CURSOR_VERSION = 1
RUNS_PER_TICK = 200
MAX_ERROR_CHARS = 500
CLIPPED = " [...] "
MAX_LISTED_WINDOWS = 10
FINISHED: tuple[Literal[dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.RUN_FAILURE], ...] = (
    dg.DagsterEventType.RUN_SUCCESS,
    dg.DagsterEventType.RUN_FAILURE,
)


@dataclass
class Streak:
    """Consecutive failed runs of one kind for one region, as stored in the cursor."""

    kind: str
    failures: int = 0
    first_failure: str = ""
    last_failure: str = ""
    windows: list[tuple[str, str]] = field(default_factory=list)
    last_error: str = ""
    last_run_id: str = ""
    alerted: bool = False

    def record(self, outcome: RunOutcome, region: str) -> None:
        self.failures += 1
        moment = _iso(outcome.finished_at)
        self.first_failure = self.first_failure or moment
        self.last_failure = moment
        self.windows = _merged(self.windows + [(_iso(w.start), _iso(w.end)) for w in outcome.windows_of(region)])
        self.last_error = _clipped(outcome.message_for(region))
        self.last_run_id = outcome.run_id


@dataclass
class AlertState:
    after_storage_id: int
    streaks: dict[str, dict[str, Streak]] = field(default_factory=dict)

    def to_cursor(self) -> str:
        return json.dumps({"version": CURSOR_VERSION, **asdict(self)}, sort_keys=True)

    @classmethod
    def from_cursor(cls, cursor: str) -> AlertState:
        data = json.loads(cursor)
        streaks = {
            region: {kind: _streak(streak) for kind, streak in kinds.items()}
            for region, kinds in data["streaks"].items()
        }
        return cls(after_storage_id=data["after_storage_id"], streaks=streaks)

    def track(self, outcome: RunOutcome, threshold: int, subject: str | None = None) -> list[Alert]:
        """Advance the streaks of every region the run covered; the alerts this outcome triggers.

        ``subject`` names what the runs store when it is not the measurements ("forecasts").
        """
        alerts: list[Alert] = []
        for region in outcome.regions:
            if region not in outcome.failed_regions:
                streaks = self.streaks.pop(region, {})
                alerts += [
                    recovery_alert(region, streak, outcome, subject) for streak in streaks.values() if streak.alerted
                ]
                continue
            kind = outcome.failed[region].kind
            streak = self.streaks.setdefault(region, {}).setdefault(kind, Streak(kind))
            streak.record(outcome, region)
            if not streak.alerted and streak.failures >= alert_threshold(kind, threshold):
                streak.alerted = True
                alerts.append(failure_alert(region, streak, subject))
        return alerts

    def unalerted(self, outcome: RunOutcome, alerts: list[Alert], threshold: int) -> list[str]:
        """Regions ``outcome`` failed that ``alerts`` leave out, and why: below the threshold, or alerted already."""
        alerted_now = {alert.fields["region"] for alert in alerts if alert.event == AlertEvent.ALERT}
        notes = []
        for region in sorted(outcome.failed_regions - alerted_now):
            kind = outcome.failed[region].kind
            streak = self.streaks[region][kind]
            if streak.alerted:
                notes.append(f"{region} ({kind.label}): already alerted, {streak.failures} failed run(s) in a row")
            else:
                limit = alert_threshold(kind, threshold)
                notes.append(f"{region} ({kind.label}): {streak.failures} of {limit} failed run(s) before an alert")
        return notes


def alert_threshold(kind: FailureKind, threshold: int) -> int:
    """Rejected data does not heal by retrying: say so at once. Everything else may be a blip."""
    return 1 if kind == FailureKind.DATA_REJECTED else threshold


def failure_alert(region: str, streak: Streak, subject: str | None = None) -> Alert:
    kind = FailureKind(streak.kind)
    return Alert(
        event=AlertEvent.ALERT,
        title=(
            f"carbon-pipeline ALERT: {kind.label} for {_of(subject, region)} ({streak.failures} failed run(s) in a row)"
        ),
        details=(
            f"Intervals affected: {_listed(_intervals(streak))}",
            f"First failure: {streak.first_failure}; last failure: {streak.last_failure}",
            f"Last error: {streak.last_error}",
        ),
        run_id=streak.last_run_id,
        fields=_fields(region, streak, subject),
    )


def recovery_alert(region: str, streak: Streak, outcome: RunOutcome, subject: str | None = None) -> Alert:
    kind = FailureKind(streak.kind)
    return Alert(
        event=AlertEvent.RECOVERY,
        title=(
            f"carbon-pipeline RECOVERED: {_of(subject, region)} succeeded again after {streak.failures} failed run(s)"
        ),
        details=(
            f"Problem: {kind.label}, from {streak.first_failure} to {streak.last_failure}",
            f"Recovered at {_iso(outcome.finished_at)}; intervals that failed: {_listed(_intervals(streak))} "
            "(gap filling requests any still missing)",
        ),
        run_id=outcome.run_id,
        fields=_fields(region, streak, subject) | {"recovered_at": _iso(outcome.finished_at)},
    )


def build_failure_alert_sensor(
    asset_key: dg.AssetKey,
    partitions_def: dg.MultiPartitionsDefinition,
    alert_after_failures: int,
    name: str = SENSOR_NAME,
    subject: str | None = None,
) -> dg.SensorDefinition:
    """Alerts on ``asset_key``'s runs; ``subject`` (e.g. "forecasts") says in every alert what failed, when it
    is not the measurements."""

    @dg.sensor(
        name=name,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Alerts once when a region's runs fail {alert_after_failures} times in a row for the same reason "
            "(InfluxDB writes, WattTime, incomplete data; rejected data at once), and once when it recovers."
        ),
    )
    def carbon_intensity_failure_alerts(
        context: dg.SensorEvaluationContext, alert_notifier: AlertNotifier
    ) -> dg.SensorResult:
        instance = context.instance
        if context.cursor:
            state = AlertState.from_cursor(context.cursor)
        else:
            state = AlertState(after_storage_id=_newest_storage_id(instance))
        outcomes, state.after_storage_id = finished_runs(instance, state.after_storage_id, asset_key, partitions_def)
        failed = sum(1 for outcome in outcomes if outcome.failed_regions)
        context.log.info("Read %d finished run(s) of the asset, %d with failed region(s)", len(outcomes), failed)
        sent, held = _alert(state, outcomes, alert_after_failures, alert_notifier, context.log, subject)
        if held:
            context.log.info("Not alerted: %s", listed(held))
        reported = f"{sent} alert(s) and recovery notice(s) sent" if sent else "nothing to report"
        return skipped(context.log, f"{len(outcomes)} finished run(s) read, {reported}", state.to_cursor())

    return carbon_intensity_failure_alerts


def _alert(
    state: AlertState,
    outcomes: list[RunOutcome],
    threshold: int,
    notifier: AlertNotifier,
    log: logging.Logger,
    subject: str | None,
) -> tuple[int, list[str]]:
    """Track every outcome and send what it triggers; how many were sent, and the failures held back."""
    sent = 0
    held: list[str] = []
    for outcome in outcomes:
        alerts = state.track(outcome, threshold, subject)
        for alert in alerts:
            notifier.send(alert, log)
        sent += len(alerts)
        held += state.unalerted(outcome, alerts, threshold)
    return sent, held


def finished_runs(
    instance: dg.DagsterInstance,
    after_storage_id: int,
    asset_key: dg.AssetKey,
    partitions_def: dg.MultiPartitionsDefinition,
) -> tuple[list[RunOutcome], int]:
    """Runs of the asset that finished after ``after_storage_id``, in the order they finished.

    Successes and failures are separate queries; when either was cut off by the page size, only
    events up to the earlier cut are used so the merged order never skips one.
    """
    batches = [
        instance.fetch_run_status_changes(
            dg.RunStatusChangeRecordsFilter(event_type, after_storage_id=after_storage_id),
            limit=RUNS_PER_TICK,
            ascending=True,
        )
        for event_type in FINISHED
    ]
    records = sorted((record for batch in batches for record in batch.records), key=lambda r: r.storage_id)
    cut_offs = [batch.records[-1].storage_id for batch in batches if batch.has_more and batch.records]
    if cut_offs:
        records = [record for record in records if record.storage_id <= min(cut_offs)]
    outcomes = [outcome for record in records if (outcome := _outcome(instance, record, asset_key, partitions_def))]
    return outcomes, (records[-1].storage_id if records else after_storage_id)


def _outcome(
    instance: dg.DagsterInstance,
    record: dg.EventLogRecord,
    asset_key: dg.AssetKey,
    partitions_def: dg.MultiPartitionsDefinition,
) -> RunOutcome | None:
    run = instance.get_run_by_id(record.run_id)
    if run is None:
        return None
    return run_outcome(instance, run, datetime.fromtimestamp(record.timestamp, UTC), asset_key, partitions_def)


def _newest_storage_id(instance: dg.DagsterInstance) -> int:
    """Where a newly enabled sensor starts: old history is not re-alerted."""
    newest = 0
    for event_type in FINISHED:
        batch = instance.fetch_run_status_changes(dg.RunStatusChangeRecordsFilter(event_type), limit=1, ascending=False)
        newest = max([newest, *(record.storage_id for record in batch.records)])
    return newest


def _streak(stored: dict[str, Any]) -> Streak:
    """A streak from the cursor's JSON, where window pairs come back as lists."""
    return Streak(**stored | {"windows": [tuple(window) for window in stored["windows"]]})


def _merged(windows: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Touching or overlapping windows as one, so the cursor stays small during long outages.

    ISO timestamps of one format sort and compare as text, so no parsing is needed.
    """
    merged: list[tuple[str, str]] = []
    for start, end in sorted(windows):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _clipped(error: str) -> str:
    """A long error keeps its start (region and interval) and its end (the cause)."""
    if len(error) <= MAX_ERROR_CHARS:
        return error
    keep = (MAX_ERROR_CHARS - len(CLIPPED)) // 2
    return error[:keep] + CLIPPED + error[-keep:]


def _intervals(streak: Streak) -> list[str]:
    return [format_window(datetime.fromisoformat(start), datetime.fromisoformat(end)) for start, end in streak.windows]


def _listed(intervals: list[str]) -> str:
    shown = intervals[-MAX_LISTED_WINDOWS:]
    hidden = len(intervals) - len(shown)
    return ", ".join(shown) + (f" and {hidden} earlier window(s)" if hidden else "")


def _of(subject: str | None, region: str) -> str:
    return f"{subject} of region {region}" if subject else f"region {region}"


def _fields(region: str, streak: Streak, subject: str | None = None) -> dict[str, object]:
    named = {"subject": subject} if subject else {}
    return named | {
        "kind": streak.kind,
        "region": region,
        "failures": streak.failures,
        "intervals": _intervals(streak),
        "first_failure": streak.first_failure,
        "last_failure": streak.last_failure,
        "last_error": streak.last_error,
    }


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
