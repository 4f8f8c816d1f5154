"""Which intervals should be in InfluxDB by now, and which of them Dagster has materialized.

Freshness and gap filling ask the same question at different depths: freshness looks at the newest
interval that is due, gap filling at every interval of a trailing window. An interval is *due* once
the schedule has had its tick for it and a settling margin has passed, so intervals WattTime has not
published yet, or whose scheduled run is still going, never count as missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import dagster as dg

from carbon_pipeline.partitions import (
    INTERVAL,
    REGION_DIMENSION,
    TIME_DIMENSION,
    interval_key,
    interval_start,
    interval_starts,
)

# Beyond the schedule's own delay: time for the scheduled run to queue, fetch and write.
SETTLE = timedelta(minutes=15)


@dataclass(frozen=True)
class DueIntervals:
    """Interval starts from ``first`` (inclusive) to ``end`` (exclusive) that should be stored by now."""

    first: datetime
    end: datetime

    @property
    def newest(self) -> datetime | None:
        return self.end - INTERVAL if self.end > self.first else None

    def starts(self) -> list[datetime]:
        return interval_starts(self.first, self.end)


def due_intervals(
    partitions_def: dg.MultiPartitionsDefinition, now: datetime, lookback: timedelta, schedule_delay: timedelta
) -> DueIntervals:
    intervals = partitions_def.get_partitions_def_for_dimension(TIME_DIMENSION)
    assert isinstance(intervals, dg.TimeWindowPartitionsDefinition)
    end = floor_interval(now - schedule_delay - SETTLE)
    first = max(intervals.start, floor_interval(now - lookback))
    return DueIntervals(first, max(first, end))


def floor_interval(moment: datetime) -> datetime:
    return moment - (moment - moment.replace(minute=0, second=0, microsecond=0)) % INTERVAL


def regions_of(partitions_def: dg.MultiPartitionsDefinition) -> list[str]:
    return list(partitions_def.get_partitions_def_for_dimension(REGION_DIMENSION).get_partition_keys())


def materialized_starts(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, since: datetime
) -> dict[str, set[datetime]]:
    """Materialized interval starts per region, from ``since`` on (keys compare as text in this format)."""
    oldest = interval_key(since)
    starts: dict[str, set[datetime]] = {}
    for key in instance.get_materialized_partitions(asset_key):
        region, _, interval = key.partition("|")
        if interval >= oldest:
            starts.setdefault(region, set()).add(interval_start(interval))
    return starts
