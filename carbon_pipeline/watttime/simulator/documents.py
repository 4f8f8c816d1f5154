"""The `{"data": [...], "meta": {...}}` document every data endpoint answers, damaged when a data fault is queued."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from carbon_pipeline.watttime.simulator.catalogue import SIGNAL_UNITS
from carbon_pipeline.watttime.simulator.faults import corrupt
from carbon_pipeline.watttime.simulator.queries import Request, Series
from carbon_pipeline.watttime.simulator.state import SimulatorState

MODEL_TYPE = "binned_regression"


def iso(epoch: int) -> str:
    """How WattTime writes a time: ISO-8601 in UTC with an explicit offset."""
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def data_reply(
    state: SimulatorState,
    request: Request,
    series: Series,
    *,
    data: list[dict[str, Any]],
    window_end: datetime,
    **meta_extra: Any,
) -> dict[str, Any]:
    """The document for `series`, damaged by a data-level fault queued for its path and region."""
    meta = {
        "data_point_period_seconds": series.period_seconds,
        "region": series.region,
        "signal_type": series.signal_type,
        "units": SIGNAL_UNITS[series.signal_type],
        "warnings": [],
        "model": {"date": series.model},
        **meta_extra,
    }
    body = {"data": data, "meta": meta}
    fault = state.take_fault(request.path, data_level=True, region=series.region)
    if fault is not None:
        corrupt(fault.kind, body, window_end)
    return body
