"""`/v3/historical`: what WattTime published, within its publication lag and its 32-day window."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from carbon_pipeline.watttime.simulator.api_errors import invalid_query
from carbon_pipeline.watttime.simulator.documents import MODEL_TYPE, data_reply, iso
from carbon_pipeline.watttime.simulator.queries import Request, boolean, series_query, time_range
from carbon_pipeline.watttime.simulator.signal import DATA_START, is_imputed, point_epochs, signal_at
from carbon_pipeline.watttime.simulator.state import SimulatorState

MAX_SPAN = timedelta(days=32)


def historical(state: SimulatorState, request: Request) -> dict[str, Any]:
    series = series_query(state, request)
    start, end = time_range(request)
    if end - start > MAX_SPAN:
        raise invalid_query("The requested time range exceeds the maximum of 32 days per request")
    with_imputed_marker = boolean(request, "include_imputed_marker")
    published_until = min(end, state.now() - timedelta(seconds=state.config.publication_lag_seconds))
    epochs = point_epochs(series.period_seconds, max(start, DATA_START), published_until)
    data: list[dict[str, Any]] = [
        {"point_time": iso(epoch), "value": signal_at(series.signal_type, series.region, epoch, series.model_age)}
        for epoch in epochs
    ]
    if with_imputed_marker:
        for point, epoch in zip(data, epochs, strict=True):
            point["imputed_data_used"] = is_imputed(series.region, epoch)
    model = {"date": series.model, "type": MODEL_TYPE}
    return data_reply(state, request, series, data=data, window_end=end, model=model)
