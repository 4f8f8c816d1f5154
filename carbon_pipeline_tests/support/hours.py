"""The hour under way, for tests of hourly sources whose server and asset both read the real clock."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from carbon_pipeline.partitions import HOUR

# A run or a tick takes a second or two; one started this close to the hour's end could see the next hour.
ROOM = timedelta(seconds=20)


def hour_under_way() -> datetime:
    """The start of the hour under way, once enough of it is left for a run to finish inside it."""
    now = datetime.now(UTC)
    start = now.replace(minute=0, second=0, microsecond=0)
    if start + HOUR - now < ROOM:
        time.sleep((start + HOUR - now).total_seconds())
        return start + HOUR
    return start
