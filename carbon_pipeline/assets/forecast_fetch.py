"""Fetching a region's forecasts: the first issue of each interval, live while it is under way, else archived.

A backfill goes a day of issues (one `/v3/forecast/historical` call) at a time: checked whole and handed to
the writer while the next day is fetched, so a month never sits in memory at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pandas as pd

from carbon_pipeline.assets.forecast_store import StoringWriter
from carbon_pipeline.forecast_validation import ForecastNotIssued, IssueWindow, check_forecasts, forecast_frame
from carbon_pipeline.partitions import INTERVAL
from carbon_pipeline.run_outcomes import FailureKind, RegionFailure
from carbon_pipeline.validation import DataRejected
from carbon_pipeline.watttime.client import WattTimeClient
from carbon_pipeline.watttime.errors import WattTimeError
from carbon_pipeline.watttime.forecasts import Forecast

# WattTime serves 24 h of `generated_at` per historical call.
ISSUES_PER_CALL = 96
ARCHIVE_CALL_SPAN = ISSUES_PER_CALL * INTERVAL
# WattTime issues a forecast every 5 minutes: one generated before this much of the interval has passed is
# the interval's first.
ISSUE_PERIOD = timedelta(minutes=5)

Serializer = Callable[[pd.DataFrame], tuple[list[str], dict[str, dict[str, object]]]]
"""An issue frame's lines, and the metadata of its own each issue's partition gets, keyed like the partition."""


@dataclass
class RegionOutcome:
    """What one region's windows came to: WattTime calls made, issues refused, and the failure that stopped it."""

    region: str
    calls: int = 0
    rejected: list[DataRejected] = field(default_factory=list)
    not_issued: list[ForecastNotIssued] = field(default_factory=list)
    stopped_by: RegionFailure | None = None

    def failures(self) -> list[RegionFailure]:
        failures = [self.stopped_by] if self.stopped_by else []
        if self.rejected:
            message = "\n".join(str(item) for item in self.rejected)
            failures.append(RegionFailure((self.region,), FailureKind.DATA_REJECTED, message, retryable=False))
        if self.not_issued:
            message = "\n".join(str(item) for item in self.not_issued)
            failures.append(RegionFailure((self.region,), FailureKind.DATA_INCOMPLETE, message, retryable=True))
        return failures


def store_region(
    client: WattTimeClient,
    writer: StoringWriter,
    windows: Sequence[IssueWindow],
    horizon_hours: int,
    now: datetime,
    serialize: Serializer,
) -> RegionOutcome:
    """Fetch, check and hand to the writer one day of a region's issues at a time; a WattTime error stops the region.

    The next day is fetched while this one is checked and written, so WattTime's latency and our CPU overlap
    while at most two days are held at once.
    """
    outcome = RegionOutcome(windows[0].region)
    days = [
        IssueWindow(piece.region, piece.start, piece.end)
        for window in windows
        for piece in window.pieces(ISSUES_PER_CALL)
    ]
    with ThreadPoolExecutor(1, thread_name_prefix=f"forecast-{outcome.region}") as ahead:
        pending = ahead.submit(_fetch, client, days[0], horizon_hours, now, outcome)
        for index, day in enumerate(days):
            try:
                issued = pending.result()
            except WattTimeError as error:
                message = f"{day.describe()}: {error}"
                outcome.stopped_by = RegionFailure(
                    (outcome.region,), FailureKind.WATTTIME, message, retryable=error.retryable
                )
                return outcome
            if writer.failed:
                return outcome
            if index + 1 < len(days):
                pending = ahead.submit(_fetch, client, days[index + 1], horizon_hours, now, outcome)
            if issued:
                checked = check_forecasts(outcome.region, forecast_frame(outcome.region, issued), horizon_hours)
                outcome.rejected.extend(checked.rejected)
                if not checked.frame.empty:
                    writer.add(outcome.region, checked.frame, *serialize(checked.frame))
    return outcome


def _fetch(
    client: WattTimeClient, window: IssueWindow, horizon_hours: int, now: datetime, outcome: RegionOutcome
) -> list[tuple[datetime, Forecast]]:
    """The first forecast issued in each interval of ``window``: live while the interval is under way, else archived."""
    if window.interval_count == 1 and window.start <= now < window.end:
        outcome.calls += 1
        live = client.forecast(window.region, horizon_hours)
        if live.generated_at < window.start:
            outcome.not_issued.append(ForecastNotIssued(window, live.generated_at))
            return []
        if live.generated_at < window.start + ISSUE_PERIOD:
            return [(window.start, live)]
        # The tick came late: the interval's first issue is only in the archive now.
    outcome.calls += math.ceil((window.end - window.start) / ARCHIVE_CALL_SPAN)
    archived = client.historical_forecasts(
        window.region, window.start, window.end, horizon_hours=horizon_hours, issue_interval=INTERVAL
    )
    issued = [(_issue_interval(forecast.generated_at), forecast) for forecast in archived]
    found = {start for start, _ in issued}
    for start in window.starts():
        if start not in found:
            outcome.not_issued.append(ForecastNotIssued(IssueWindow(window.region, start, start + INTERVAL), None))
    return [(start, forecast) for start, forecast in issued if window.start <= start < window.end]


def _issue_interval(moment: datetime) -> datetime:
    return moment - (moment - datetime(1970, 1, 1, tzinfo=UTC)) % INTERVAL
