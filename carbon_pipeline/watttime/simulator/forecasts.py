"""`/v3/forecast` and `/v3/forecast/historical`: the forecast issued every 5 minutes, now and in the archive.

Both endpoints serve the same issues (`forecasting.py`), so the archive holds exactly what `/v3/forecast`
answered at each `generated_at`. Forecasts are an endpoint of their own in a plan: a region the account may
read history for can still lack forecast access (`SimulatorConfig.forecast_regions`), which is a 403.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from carbon_pipeline.watttime.simulator.api_errors import invalid_query, invalid_scope, outside_forecast_archive
from carbon_pipeline.watttime.simulator.documents import data_reply, iso
from carbon_pipeline.watttime.simulator.forecasting import (
    ISSUE_PERIOD_SECONDS,
    first_point,
    forecast_values,
    issue_time,
    point_count,
    published,
)
from carbon_pipeline.watttime.simulator.queries import Request, Series, horizon_hours, series_query, time_range
from carbon_pipeline.watttime.simulator.state import SimulatorState

MAX_ISSUE_SPAN = timedelta(hours=24)


def forecast(state: SimulatorState, request: Request) -> dict[str, Any]:
    """The newest forecast, whose first point is the current period, like the real endpoint."""
    series = _forecast_query(state, request)
    generated_at = issue_time(int(state.now().timestamp()))
    [points] = _issues(series, range(generated_at, generated_at + 1), horizon_hours(request))
    window_end = datetime.fromisoformat(points[-1]["point_time"])
    return data_reply(
        state,
        request,
        series,
        data=points,
        window_end=window_end,
        generated_at=iso(generated_at),
        generated_at_period_seconds=ISSUE_PERIOD_SECONDS,
    )


def forecast_historical(state: SimulatorState, request: Request) -> dict[str, Any]:
    """Every forecast issued with `generated_at` in [start, end] (inclusive), at most 24 h of them per call.

    Issues before the archive's start are gone (404 when the whole range is); issues after now do not exist
    yet, so a range in the future is an empty list.
    """
    series = _forecast_query(state, request)
    start, end = time_range(request)
    if end - start > MAX_ISSUE_SPAN:
        raise invalid_query("The requested time range exceeds the maximum of 24 hours per request")
    hours = horizon_hours(request)
    archive_start = state.config.forecast_archive_start.astimezone(UTC)
    if end < archive_start:
        raise outside_forecast_archive()
    first = math.ceil(max(start, archive_start).timestamp() / ISSUE_PERIOD_SECONDS) * ISSUE_PERIOD_SECONDS
    last = min(issue_time(math.floor(end.timestamp())), issue_time(int(state.now().timestamp())))
    issues = range(first, last + 1, ISSUE_PERIOD_SECONDS)
    data = [
        {"generated_at": iso(generated_at), "forecast": points}
        for generated_at, points in zip(issues, _issues(series, issues, hours), strict=True)
    ]
    return data_reply(
        state, request, series, data=data, window_end=end, generated_at_period_seconds=ISSUE_PERIOD_SECONDS
    )


def _forecast_query(state: SimulatorState, request: Request) -> Series:
    series = series_query(state, request)
    if not state.has_forecast_access(series.region):
        raise invalid_scope()
    return series


def _issues(series: Series, issues: range, hours: int) -> list[list[dict[str, Any]]]:
    """The points of each issue; published values and time labels are computed once for all of them."""
    if not issues:
        return []
    period = series.period_seconds
    count = point_count(hours, period)
    first = first_point(issues[0], period)
    epochs = np.arange(first, first_point(issues[-1], period) + count * period, period)
    actual = published(series.signal_type, series.region, series.model_age, epochs.tolist())
    labels = [iso(epoch) for epoch in epochs.tolist()]
    curves = []
    for generated_at in issues:
        offset = (first_point(generated_at, period) - first) // period
        span = slice(offset, offset + count)
        values = forecast_values(
            series.signal_type, series.region, series.model_age, generated_at, epochs[span], actual[span]
        )
        curves.append(
            [{"point_time": label, "value": value} for label, value in zip(labels[span], values, strict=True)]
        )
    return curves
