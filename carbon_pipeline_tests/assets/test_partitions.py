"""Partition keys to fetch windows, and the schedule's cron."""

from datetime import UTC, datetime

import dagster as dg

from carbon_pipeline.partitions import RegionWindow, region_windows
from carbon_pipeline.schedules import fifteen_minute_cron


def _key(region: str, interval: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"region": region, "time": interval})


def test_contiguous_keys_become_one_window_per_region_and_gaps_split() -> None:
    keys = [
        _key("CAISO_NORTH", "2025-01-01-00:00"),
        _key("CAISO_NORTH", "2025-01-01-00:15"),
        _key("CAISO_NORTH", "2025-01-01-01:00"),
        _key("PJM_DC", "2025-01-01-00:15"),
    ]
    assert region_windows(keys) == [
        RegionWindow("CAISO_NORTH", datetime(2025, 1, 1, 0, 0, tzinfo=UTC), datetime(2025, 1, 1, 0, 30, tzinfo=UTC)),
        RegionWindow("CAISO_NORTH", datetime(2025, 1, 1, 1, 0, tzinfo=UTC), datetime(2025, 1, 1, 1, 15, tzinfo=UTC)),
        RegionWindow("PJM_DC", datetime(2025, 1, 1, 0, 15, tzinfo=UTC), datetime(2025, 1, 1, 0, 30, tzinfo=UTC)),
    ]


def test_window_description_names_region_and_utc_bounds() -> None:
    window = RegionWindow("CAISO_NORTH", datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, 0, 15, tzinfo=UTC))
    assert window.describe() == "region CAISO_NORTH, interval 2025-01-01T00:00Z..2025-01-01T00:15Z"
    assert window.interval_count == 1


def test_cron_ticks_once_per_interval_after_the_delay() -> None:
    assert fifteen_minute_cron(5) == "5,20,35,50 * * * *"
    assert fifteen_minute_cron(0) == "0,15,30,45 * * * *"
    assert fifteen_minute_cron(14) == "14,29,44,59 * * * *"
