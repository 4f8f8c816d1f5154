"""Is the newest due interval stored for every region? A check in the UI, kept current by a sensor.

Dagster's ``build_time_partition_freshness_checks`` only accepts time-partitioned assets, not a
region x time grid, so the check is ours: an interval is due once its scheduled tick and a settling
margin have passed (see ``coverage``). The sensor records the check's result on the asset without
launching a run, each time a new interval falls due or the result changes, and alerts through the
notifier once when a region goes stale and once when it is fresh again. The check can also be
executed by hand from the asset's Checks tab, or runs inside a range run that selects the asset with
its checks (``dagster asset materialize --select carbon_intensity``).

Whatever the history, the check costs the same: it looks up a day of keys per region, and it hands
Dagster its evaluation ready-made. Returned as an ``AssetCheckResult``, Dagster would complete the
result with the asset's data version, which for an unpartitioned check of this partitioned asset
means listing every partition key of the region x interval grid (seconds per region and growing by
the day) before it gives up and uses the latest materialization, which the check looks up itself.
"""

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg

from carbon_pipeline.access_gate import requestable
from carbon_pipeline.coverage import DueIntervals, due_intervals, materialized_starts, regions_of
from carbon_pipeline.dagster_private import AssetCheckEvaluationTargetMaterializationData, RawMetadataValue
from carbon_pipeline.notifier import Alert, AlertEvent, AlertNotifier
from carbon_pipeline.partitions import INTERVAL, format_window
from carbon_pipeline.sensors.tick_log import listed, skipped
from carbon_pipeline.watttime.access import HISTORICAL

CHECK_NAME = "newest_interval_fresh"
SENSOR_NAME = "carbon_intensity_freshness"
LOOKBACK = timedelta(days=1)


@dataclass(frozen=True)
class Freshness:
    """Per region: the newest stored interval within a day, and whether the newest due one is there."""

    due: DueIntervals
    newest_stored: dict[str, datetime | None]

    @property
    def stale_regions(self) -> list[str]:
        expected = self.due.newest
        if expected is None:
            return []
        return sorted(region for region, newest in self.newest_stored.items() if newest is None or newest < expected)

    @property
    def passed(self) -> bool:
        return not self.stale_regions

    def description(self) -> str:
        expected = self.due.newest
        if expected is None:
            return "No interval is due yet."
        interval = format_window(expected, expected + INTERVAL)
        if self.passed:
            return f"Every region has its newest due interval, {interval}."
        return f"Late: interval {interval} is missing for region(s) {', '.join(self.stale_regions)}."

    def summary(self) -> str:
        """What the tick found, for its log: how many regions lack the newest due interval, and which."""
        expected = self.due.newest
        if expected is None:
            return "No interval is due yet."
        interval = format_window(expected, expected + INTERVAL)
        regions = len(self.newest_stored)
        if self.passed:
            return f"Newest due interval {interval}: stored for all {regions} region(s)."
        stale = self.stale_regions
        return f"Newest due interval {interval}: missing for {len(stale)} of {regions} region(s): {listed(stale)}."

    def metadata(self, now: datetime) -> dict[str, RawMetadataValue]:
        lag = {region: _lag_minutes(now, newest) for region, newest in self.newest_stored.items()}
        return {
            "stale_regions": ", ".join(self.stale_regions) or "none",
            "newest_due_interval": format_window(self.due.newest, self.due.newest + INTERVAL)
            if self.due.newest
            else "",
            "max_lag_minutes": max((value for value in lag.values() if value is not None), default=None),
            "lag_minutes_by_region": dg.MetadataValue.json(lag),
        }

    def evaluation(
        self,
        asset_key: dg.AssetKey,
        now: datetime,
        target: AssetCheckEvaluationTargetMaterializationData | None = None,
    ) -> dg.AssetCheckEvaluation:
        """The check's result as Dagster records it; ``target`` is the materialization it was evaluated on."""
        return dg.AssetCheckEvaluation(
            asset_key=asset_key,
            check_name=CHECK_NAME,
            passed=self.passed,
            severity=dg.AssetCheckSeverity.WARN,
            description=self.description(),
            metadata=self.metadata(now),
            target_materialization_data=target,
            blocking=False,
        )


def measure_freshness(
    instance: dg.DagsterInstance,
    asset_key: dg.AssetKey,
    partitions_def: dg.MultiPartitionsDefinition,
    now: datetime,
    schedule_delay: timedelta,
) -> Freshness:
    due = due_intervals(partitions_def, now, LOOKBACK, schedule_delay)
    # A region the plan does not allow is never requested, so it is not late either.
    regions, _ = requestable(instance, HISTORICAL, regions_of(partitions_def))
    # Up to now, not only to the newest due interval: a run may already have stored a newer one.
    stored = materialized_starts(instance, asset_key, regions, due.first, now)
    return Freshness(due, {region: max(stored.get(region, ()), default=None) for region in regions})


def latest_materialization(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey
) -> AssetCheckEvaluationTargetMaterializationData | None:
    """The asset's newest materialization, any partition: what the check's result is attached to in the UI."""
    records = instance.fetch_materializations(asset_key, limit=1).records
    if not records:
        return None
    (record,) = records
    return AssetCheckEvaluationTargetMaterializationData(
        storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
    )


def build_freshness_check(
    asset_key: dg.AssetKey, partitions_def: dg.MultiPartitionsDefinition, schedule_delay: timedelta
) -> dg.AssetChecksDefinition:
    # Dagster types a check function as returning an AssetCheckResult; its executor takes Output and
    # AssetCheckEvaluation events from any op, checks included (see the module docstring for why).
    @dg.asset_check(  # type: ignore[arg-type]
        asset=asset_key,
        name=CHECK_NAME,
        description=(
            "Every region has the newest interval that is due: its scheduled tick plus a settling margin "
            "have passed. Kept current by the carbon_intensity_freshness sensor."
        ),
    )
    def newest_interval_fresh(
        context: dg.AssetCheckExecutionContext,
    ) -> Iterator[dg.Output[None] | dg.AssetCheckEvaluation]:
        now = datetime.now(UTC)
        freshness = measure_freshness(context.instance, asset_key, partitions_def, now, schedule_delay)
        yield dg.Output(None)
        yield freshness.evaluation(asset_key, now, latest_materialization(context.instance, asset_key))

    return newest_interval_fresh


def build_freshness_sensor(
    asset_key: dg.AssetKey, partitions_def: dg.MultiPartitionsDefinition, schedule_delay: timedelta
) -> dg.SensorDefinition:
    @dg.sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=120,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Records the {CHECK_NAME} check and alerts once when a region's newest interval is late.",
    )
    def carbon_intensity_freshness(
        context: dg.SensorEvaluationContext, alert_notifier: AlertNotifier
    ) -> dg.SensorResult:
        now = datetime.now(UTC)
        freshness = measure_freshness(context.instance, asset_key, partitions_def, now, schedule_delay)
        context.log.info(freshness.summary())
        previous = json.loads(context.cursor) if context.cursor else {"stale": [], "due": None}
        context.log.info(_send_alerts(freshness, set(previous["stale"]), alert_notifier, context.log, now))
        due = freshness.due.newest.isoformat() if freshness.due.newest else None
        current = {"stale": freshness.stale_regions, "due": due}
        if previous == current:
            return skipped(context.log, f"unchanged: {freshness.description()}", json.dumps(current))
        outcome = "passed" if freshness.passed else "failed (WARN)"
        recorded = f"recorded the {CHECK_NAME} check, {outcome}: {freshness.description()}"
        return skipped(context.log, recorded, json.dumps(current), [freshness.evaluation(asset_key, now)])

    return carbon_intensity_freshness


def _send_alerts(
    freshness: Freshness, alerted: set[str], notifier: AlertNotifier, log: logging.Logger, now: datetime
) -> str:
    """Alert the regions that went late and announce those fresh again; what was sent and what was held back."""
    stale = set(freshness.stale_regions)
    late, fresh_again, still_late = sorted(stale - alerted), sorted(alerted - stale), sorted(stale & alerted)
    for region in late:
        notifier.send(_late_alert(region, freshness, now), log)
    for region in fresh_again:
        notifier.send(_fresh_again_alert(region, freshness), log)
    sent = [f"late alert for {listed(late)}"] if late else []
    sent += [f"up-to-date notice for {listed(fresh_again)}"] if fresh_again else []
    held = f"; not alerted again, still late: {listed(still_late)}" if still_late else ""
    return f"Alerts sent: {', '.join(sent) or 'none'}{held}"


def _late_alert(region: str, freshness: Freshness, now: datetime) -> Alert:
    newest = freshness.newest_stored.get(region)
    stored = format_window(newest, newest + INTERVAL) if newest else "none in the last day"
    return Alert(
        event=AlertEvent.ALERT,
        title=f"carbon-pipeline ALERT: data for region {region} is late",
        details=(freshness.description(), f"Newest stored interval: {stored}; checked at {now:%Y-%m-%dT%H:%MZ}"),
        fields={"kind": "freshness", "region": region, "stale_regions": freshness.stale_regions},
    )


def _fresh_again_alert(region: str, freshness: Freshness) -> Alert:
    return Alert(
        event=AlertEvent.RECOVERY,
        title=f"carbon-pipeline RECOVERED: data for region {region} is up to date again",
        details=(freshness.description(),),
        fields={"kind": "freshness", "region": region},
    )


def _lag_minutes(now: datetime, newest: datetime | None) -> float | None:
    return None if newest is None else round((now - (newest + INTERVAL)).total_seconds() / 60, 1)
