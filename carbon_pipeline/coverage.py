"""Which intervals should be in InfluxDB by now, and which of them Dagster has materialized.

Freshness and gap filling ask the same question at different depths: freshness looks at the newest
interval that is due, gap filling at every interval of a trailing window. An interval is *due* once
the schedule has had its tick for it and a settling margin has passed, so intervals WattTime has not
published yet, or whose scheduled run is still going, never count as missing.

Both look up only the keys of their window, never every key the asset has materialized: with 20
regions, two years of history are 1.4 million keys, and reading them all on every tick made the
sensors slower by the day.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice

import dagster as dg

from carbon_pipeline.dagster_private import latest_materialization_ids
from carbon_pipeline.partitions import (
    INTERVAL,
    REGION_DIMENSION,
    TIME_DIMENSION,
    interval_key,
    interval_starts,
    interval_step,
    partition_key_text,
)

# Beyond the schedule's own delay: time for the scheduled run to queue, fetch and write.
SETTLE = timedelta(minutes=15)
# Keys per lookup: one indexed query each, well under SQLite's 32,766 bound parameters.
KEYS_PER_QUERY = 10_000


@dataclass(frozen=True)
class DueIntervals:
    """Interval starts from ``first`` (inclusive) to ``end`` (exclusive) that should be stored by now."""

    first: datetime
    end: datetime
    step: timedelta = INTERVAL

    @property
    def newest(self) -> datetime | None:
        return self.end - self.step if self.end > self.first else None

    def starts(self) -> list[datetime]:
        return interval_starts(self.first, self.end, self.step)


def due_intervals(
    partitions_def: dg.MultiPartitionsDefinition, now: datetime, lookback: timedelta, schedule_delay: timedelta
) -> DueIntervals:
    intervals = partitions_def.get_partitions_def_for_dimension(TIME_DIMENSION)
    assert isinstance(intervals, dg.TimeWindowPartitionsDefinition)
    step = interval_step(partitions_def)
    end = floor_interval(now - schedule_delay - SETTLE, step)
    first = max(intervals.start, floor_interval(now - lookback, step))
    return DueIntervals(first, max(first, end), step)


def floor_interval(moment: datetime, step: timedelta = INTERVAL) -> datetime:
    """The start of the ``step`` interval (15 minutes or an hour, both aligned to the hour) holding ``moment``."""
    return moment - (moment - moment.replace(minute=0, second=0, microsecond=0)) % step


def regions_of(partitions_def: dg.MultiPartitionsDefinition) -> list[str]:
    return list(partitions_def.get_partitions_def_for_dimension(REGION_DIMENSION).get_partition_keys())


def materialized_starts(
    instance: dg.DagsterInstance,
    asset_key: dg.AssetKey,
    regions: Iterable[str],
    first: datetime,
    end: datetime,
    step: timedelta = INTERVAL,
) -> dict[str, set[datetime]]:
    """Per region, the interval starts from ``first`` (inclusive) to ``end`` (exclusive) Dagster has materialized.

    Only the window's region x interval keys are looked up, ``KEYS_PER_QUERY`` at a time, so the cost
    follows the window and the number of regions, not how long the asset has been materialized.
    """
    intervals = {interval_key(start): start for start in interval_starts(first, end, step)}
    wanted = {
        partition_key_text(region, interval): (region, start)
        for region in regions
        for interval, start in intervals.items()
    }
    starts: dict[str, set[datetime]] = {}
    for batch in batches(list(wanted), KEYS_PER_QUERY):
        for key in latest_materialization_ids(instance, asset_key, batch):
            region, start = wanted[key]
            starts.setdefault(region, set()).add(start)
    return starts


def batches(items: Sequence[str], size: int) -> Iterator[list[str]]:
    """``items`` in consecutive lists of at most ``size`` (``itertools.batched`` arrives in Python 3.12)."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch
