"""Partitions of the carbon-intensity asset: one per WattTime region and 15-minute UTC interval.

Both dimensions are explicit so every region x interval is materialized, tracked and backfilled on
its own in the UI. Intervals are keyed by their start and always in UTC: a sub-hourly cron in a
local timezone would repeat or skip keys at DST changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import dagster as dg

REGION_DIMENSION = "region"
TIME_DIMENSION = "time"
INTERVAL = timedelta(minutes=15)
HOUR = timedelta(hours=1)
# The cron of each interval length a source serves: one key per interval, at its start.
INTERVAL_CRONS = {INTERVAL: "*/15 * * * *", HOUR: "0 * * * *"}
INTERVAL_KEY_FORMAT = "%Y-%m-%d-%H:%M"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
# Dagster's TimeWindowPartitionsDefinition docstring advises staying under this many partitions.
PARTITION_COUNT_ADVICE = 100_000


def build_interval_partitions(
    start: datetime, end_offset: int = 0, step: timedelta = INTERVAL
) -> dg.TimeWindowPartitionsDefinition:
    """Intervals of ``step`` (15 minutes or an hour), keyed by their start in one format whatever the length."""
    return dg.TimeWindowPartitionsDefinition(
        cron_schedule=INTERVAL_CRONS[step],
        start=start,
        fmt=INTERVAL_KEY_FORMAT,
        timezone="UTC",
        end_offset=end_offset,
    )


def interval_step(partitions_def: dg.MultiPartitionsDefinition) -> timedelta:
    """The interval length of a region (or zone) x interval partitioning, from its cron (``INTERVAL_CRONS``)."""
    intervals = partitions_def.get_partitions_def_for_dimension(TIME_DIMENSION)
    assert isinstance(intervals, dg.TimeWindowPartitionsDefinition)
    return next(step for step, cron in INTERVAL_CRONS.items() if cron == intervals.cron_schedule)


def build_carbon_partitions(regions: Sequence[str], start: datetime) -> dg.MultiPartitionsDefinition:
    """Measured intervals: an interval exists once it has closed and its points can be published."""
    return _region_intervals(regions, build_interval_partitions(start))


def build_issue_partitions(regions: Sequence[str], start: datetime) -> dg.MultiPartitionsDefinition:
    """Forecast issue intervals: the same keys, but the interval under way exists too, since its forecast is out."""
    return _region_intervals(regions, build_interval_partitions(start, end_offset=1))


def build_zone_partitions(
    zones: Sequence[str], start: datetime, step: timedelta, end_offset: int = 0
) -> dg.MultiPartitionsDefinition:
    """Intervals of ``step`` per zone (``REGION_DIMENSION`` holds the zone), for sources beyond WattTime: measured
    ones by default, or forecast issues with ``end_offset=1`` (the interval under way exists too)."""
    return _region_intervals(zones, build_interval_partitions(start, end_offset, step))


def _region_intervals(
    regions: Sequence[str], intervals: dg.TimeWindowPartitionsDefinition
) -> dg.MultiPartitionsDefinition:
    return dg.MultiPartitionsDefinition(
        {REGION_DIMENSION: dg.StaticPartitionsDefinition(list(regions)), TIME_DIMENSION: intervals}
    )


def partition_count(regions: Sequence[str], start: datetime, now: datetime) -> int:
    """Region x interval partitions that exist at ``now``, to compare with Dagster's advice."""
    return len(regions) * int((now - start) / INTERVAL)


@dataclass(frozen=True, order=True)
class RegionWindow:
    """A contiguous run of intervals for one region: the unit fetched, validated and written together.

    ``step`` is the interval length (WattTime's 15 minutes unless a source serves coarser data) and
    ``key_name`` what messages call the series key: a WattTime region, an Electricity Maps zone.
    """

    region: str
    start: datetime
    end: datetime
    step: timedelta = INTERVAL
    key_name: str = "region"

    @property
    def interval_count(self) -> int:
        return int((self.end - self.start) / self.step)

    def describe(self) -> str:
        return f"{self.key_name} {self.region}, interval {format_window(self.start, self.end)}"

    def starts(self) -> list[datetime]:
        return interval_starts(self.start, self.end, self.step)

    def pieces(self, max_intervals: int) -> list[RegionWindow]:
        """This window cut into consecutive windows of at most ``max_intervals`` intervals."""
        step = self.step * max_intervals
        cuts = [self.start + index * step for index in range(-(-self.interval_count // max_intervals))]
        return [replace(self, start=cut, end=min(cut + step, self.end)) for cut in cuts]


def interval_starts(first: datetime, end: datetime, step: timedelta = INTERVAL) -> list[datetime]:
    """Starts of the ``step`` intervals from ``first`` (inclusive) to ``end`` (exclusive)."""
    return [first + index * step for index in range(max(0, int((end - first) / step)))]


def region_range_tags(region: str, first: datetime, last: datetime) -> dict[str, str]:
    """Run tags of a single-run backfill of ``region`` from interval ``first`` to ``last`` (both starts, inclusive)."""
    return _range_tags(region_partition_key(region, first), region_partition_key(region, last))


def interval_range_tags(regions: Sequence[str], start: datetime) -> dict[str, str]:
    """Run tags of one run covering the interval at ``start`` for every region, in one process.

    Dagster resolves a range of multi-partition keys dimension by dimension, so the first to the
    last region of the static dimension at one interval is exactly every region at that interval.
    """
    return regions_range_tags(regions, start, start)


def regions_range_tags(regions: Sequence[str], first: datetime, last: datetime) -> dict[str, str]:
    """Run tags of one run covering every region from interval ``first`` to ``last`` (both starts, inclusive)."""
    return _range_tags(region_partition_key(regions[0], first), region_partition_key(regions[-1], last))


def _range_tags(first: dg.MultiPartitionKey, last: dg.MultiPartitionKey) -> dict[str, str]:
    return {RANGE_START_TAG: str(first), RANGE_END_TAG: str(last)}


def region_partition_key(region: str, start: datetime) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({REGION_DIMENSION: region, TIME_DIMENSION: interval_key(start)})


def partition_key_text(region: str, interval: str) -> str:
    """The key of ``region`` at the interval keyed ``interval``, as the event log stores it.

    The same as ``str(region_partition_key(...))``: Dagster joins a multi-partition key's dimension
    keys with "|" in the order of the dimension names, region before time. The sensors look up
    thousands of keys per tick, and building each ``MultiPartitionKey`` costs more than the query.
    """
    return f"{region}|{interval}"


def interval_start(key: str) -> datetime:
    return datetime.strptime(key, INTERVAL_KEY_FORMAT).replace(tzinfo=UTC)


def interval_key(start: datetime) -> str:
    return start.astimezone(UTC).strftime(INTERVAL_KEY_FORMAT)


def region_windows(
    keys: Iterable[dg.MultiPartitionKey], step: timedelta = INTERVAL, key_name: str = "region"
) -> list[RegionWindow]:
    """Group a run's partition keys into per-region contiguous windows.

    A single-run backfill hands the asset thousands of keys; fetching per contiguous window instead of
    per key is what keeps a month down to two WattTime calls.
    """
    starts_by_region: dict[str, list[datetime]] = {}
    for key in keys:
        dims = key.keys_by_dimension
        starts_by_region.setdefault(dims[REGION_DIMENSION], []).append(interval_start(dims[TIME_DIMENSION]))
    windows = []
    for region, starts in starts_by_region.items():
        windows.extend(contiguous_windows(region, starts, step, key_name))
    return sorted(windows)


def contiguous_windows(
    region: str, starts: Iterable[datetime], step: timedelta = INTERVAL, key_name: str = "region"
) -> list[RegionWindow]:
    """Interval starts of one region, in any order, as the fewest windows that cover exactly them."""
    ordered = sorted(set(starts))
    if not ordered:
        return []
    windows: list[RegionWindow] = []
    run_start = previous = ordered[0]
    for start in ordered[1:]:
        if start - previous != step:
            windows.append(RegionWindow(region, run_start, previous + step, step, key_name))
            run_start = start
        previous = start
    windows.append(RegionWindow(region, run_start, previous + step, step, key_name))
    return windows


def format_window(start: datetime, end: datetime) -> str:
    """``2025-01-01T00:00Z..2025-01-01T00:15Z``: short, unambiguous UTC bounds for messages."""
    return f"{_iso_minute(start)}..{_iso_minute(end)}"


def _iso_minute(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
