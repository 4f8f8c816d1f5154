"""`/v3/signal-index`: where the current MOER ranks among the next 24 hours of the simulator's own forecast.

WattTime documents this endpoint least of all (see the README's "Signal index" section): the reply shape is
aiowatttime's fixture (one point, the current 5-minute period, `units: percentile`), the meaning WattTime's
withdrawn v3 draft (0 cleanest to 100 dirtiest, "using a 24h lookahead" of the forecast). Which accounts may
read it is unknown for v3; `SimulatorState.has_index_access` makes it a switch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from carbon_pipeline.watttime.simulator.api_errors import invalid_scope
from carbon_pipeline.watttime.simulator.catalogue import MOER
from carbon_pipeline.watttime.simulator.documents import data_reply, iso
from carbon_pipeline.watttime.simulator.forecasting import ISSUE_PERIOD_SECONDS, issue_time, issued_forecast
from carbon_pipeline.watttime.simulator.queries import Request, unchecked_series
from carbon_pipeline.watttime.simulator.state import SimulatorState

LOOKAHEAD_HOURS = 24
INDEX_UNITS = "percentile"
PERCENTILE_DECIMALS = 1


def signal_index(state: SimulatorState, request: Request) -> dict[str, Any]:
    """One point for the current 5-minute period; `signal_type` defaults to co2_moer, as aiowatttime sends none."""
    request = replace(request, params={"signal_type": MOER, **request.params})
    series = unchecked_series(state, request)
    if not state.has_index_access(request.user, series.region):
        raise invalid_scope()
    now = issue_time(int(state.now().timestamp()))
    lookahead = issued_forecast(
        series.region, now, LOOKAHEAD_HOURS, series.period_seconds, series.signal_type, series.model_age
    )
    point = {"point_time": iso(now), "value": lookahead_percentile(lookahead)}
    return data_reply(
        state,
        request,
        replace(series, period_seconds=ISSUE_PERIOD_SECONDS),
        data=[point],
        window_end=datetime.fromtimestamp(now + ISSUE_PERIOD_SECONDS, UTC),
        units=INDEX_UNITS,
    )


def lookahead_percentile(values: Sequence[float]) -> float:
    """How many of the other values lie below the first, as a percentage: 0 when it is the lowest, 100 the highest."""
    current, others = values[0], values[1:]
    below = sum(value < current for value in others)
    return round(100 * below / len(others), PERCENTILE_DECIMALS)
