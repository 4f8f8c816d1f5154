"""`/v3/historical`: what WattTime published, within its publication lag and its 32-day window.

A point is published its publication lag after its time; with revisions configured, a seeded share of points
gets a new value some hours later. `last_updated` says when a point's current value appeared, and
`updated_since` keeps only the points whose `last_updated` is at or after it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from carbon_pipeline.watttime.simulator.api_errors import invalid_query
from carbon_pipeline.watttime.simulator.documents import MODEL_TYPE, data_reply, iso
from carbon_pipeline.watttime.simulator.queries import Request, Series, boolean, series_query, time_range, timestamp
from carbon_pipeline.watttime.simulator.signal import (
    DATA_START,
    is_imputed,
    is_revised,
    point_epochs,
    revised_value,
    signal_at,
)
from carbon_pipeline.watttime.simulator.state import SimulatorState

MAX_SPAN = timedelta(days=32)
UPDATED_SINCE = "updated_since"


def historical(state: SimulatorState, request: Request) -> dict[str, Any]:
    series = series_query(state, request)
    start, end = time_range(request)
    if end - start > MAX_SPAN:
        raise invalid_query("The requested time range exceeds the maximum of 32 days per request")
    with_imputed_marker = boolean(request, "include_imputed_marker")
    updated_since = timestamp(request, UPDATED_SINCE) if UPDATED_SINCE in request.params else None
    published_until = min(end, state.now() - timedelta(seconds=state.config.publication_lag_seconds))
    epochs = point_epochs(series.period_seconds, max(start, DATA_START), published_until)
    if updated_since is None and not state.config.revision_share:
        data: list[dict[str, Any]] = [
            {"point_time": iso(epoch), "value": signal_at(series.signal_type, series.region, epoch, series.model_age)}
            for epoch in epochs
        ]
        imputed_epochs: list[int] | range = epochs
    else:
        dated = _dated_points(state, series, epochs, updated_since)
        data = [point for _, point in dated]
        imputed_epochs = [epoch for epoch, _ in dated]
    if with_imputed_marker:
        for point, epoch in zip(data, imputed_epochs, strict=True):
            point["imputed_data_used"] = is_imputed(series.region, epoch)
    model = {"date": series.model, "type": MODEL_TYPE}
    return data_reply(state, request, series, data=data, window_end=end, model=model)


def _dated_points(
    state: SimulatorState, series: Series, epochs: range, updated_since: datetime | None
) -> list[tuple[int, dict[str, Any]]]:
    """Each point's current value and `last_updated`, with the points updated before `updated_since` left out."""
    config = state.config
    lag, delay = round(config.publication_lag_seconds), round(config.revision_delay_seconds)
    now = state.now().timestamp()
    since = None if updated_since is None else updated_since.timestamp()
    dated = []
    for epoch in epochs:
        value = signal_at(series.signal_type, series.region, epoch, series.model_age)
        updated = epoch + lag
        if is_revised(series.signal_type, series.region, epoch, config.revision_share) and updated + delay <= now:
            value, updated = revised_value(series.signal_type, value), updated + delay
        if since is None or updated >= since:
            dated.append((epoch, {"point_time": iso(epoch), "value": value, "last_updated": iso(updated)}))
    return dated
