"""Is the newest due interval stored for every region? A check in the UI, kept current by a sensor.

Dagster's ``build_time_partition_freshness_checks`` only accepts time-partitioned assets, not a
region x time grid, so the check is ours: an interval is due once its scheduled tick and a settling
margin have passed (see ``coverage``). The sensor records the check's result on the asset without
launching a run, each time a new interval falls due or the result changes, and alerts through the
notifier once when a region goes stale and once when it is fresh again. The check can also be
executed by hand from the asset's Checks tab.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg

from carbon_pipeline.coverage import DueIntervals, due_intervals, materialized_starts, regions_of
from carbon_pipeline.dagster_private import RawMetadataValue
from carbon_pipeline.notifier import Alert, AlertEvent, AlertNotifier
from carbon_pipeline.partitions import INTERVAL, format_window

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


def measure_freshness(
    instance: dg.DagsterInstance,
    asset_key: dg.AssetKey,
    partitions_def: dg.MultiPartitionsDefinition,
    now: datetime,
    schedule_delay: timedelta,
) -> Freshness:
    due = due_intervals(partitions_def, now, LOOKBACK, schedule_delay)
    stored = materialized_starts(instance, asset_key, due.first)
    return Freshness(due, {region: max(stored.get(region, ()), default=None) for region in regions_of(partitions_def)})


def build_freshness_check(
    asset_key: dg.AssetKey, partitions_def: dg.MultiPartitionsDefinition, schedule_delay: timedelta
) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset_key,
        name=CHECK_NAME,
        description=(
            "Every region has the newest interval that is due: its scheduled tick plus a settling margin "
            "have passed. Kept current by the carbon_intensity_freshness sensor."
        ),
    )
    def newest_interval_fresh(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        now = datetime.now(UTC)
        freshness = measure_freshness(context.instance, asset_key, partitions_def, now, schedule_delay)
        return dg.AssetCheckResult(
            passed=freshness.passed,
            severity=dg.AssetCheckSeverity.WARN,
            description=freshness.description(),
            metadata=freshness.metadata(now),
        )

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
        previous = json.loads(context.cursor) if context.cursor else {"stale": [], "due": None}
        alerted, stale = set(previous["stale"]), set(freshness.stale_regions)
        for region in sorted(stale - alerted):
            alert_notifier.send(_late_alert(region, freshness, now), context.log)
        for region in sorted(alerted - stale):
            alert_notifier.send(_fresh_again_alert(region, freshness), context.log)
        due = freshness.due.newest.isoformat() if freshness.due.newest else None
        cursor = json.dumps({"stale": sorted(stale), "due": due})
        if previous == {"stale": sorted(stale), "due": due}:
            return dg.SensorResult(cursor=cursor, skip_reason=f"unchanged: {freshness.description()}")
        evaluation = dg.AssetCheckEvaluation(
            asset_key=asset_key,
            check_name=CHECK_NAME,
            passed=freshness.passed,
            severity=dg.AssetCheckSeverity.WARN,
            description=freshness.description(),
            metadata=freshness.metadata(now),
        )
        return dg.SensorResult(asset_events=[evaluation], cursor=cursor)

    return carbon_intensity_freshness


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
