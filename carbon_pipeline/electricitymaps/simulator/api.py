"""The carbon-intensity endpoints of the simulated Electricity Maps API, checked as the real one checks them.

Error bodies are `{"status": "error", "message": ...}`; endpoints raise `ApiError` and the handler replies.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from carbon_pipeline.electricitymaps.endpoints import (
    EMISSION_FACTOR_TYPES,
    FORECAST_HORIZON_HOURS,
    FORECAST_PATH,
    GRANULARITIES,
    HISTORY_PATH,
    HISTORY_SPAN,
    LATEST_PATH,
    PAST_RANGE_CHUNKS,
    PAST_RANGE_PATH,
    api_time,
)
from carbon_pipeline.electricitymaps.simulator.state import FREE, SimulatorState, floor_to
from carbon_pipeline.electricitymaps.simulator.values import intensity
from carbon_pipeline.loopback_http import ApiError

FREE_PATHS = frozenset({LATEST_PATH, HISTORY_PATH})
ESTIMATION_METHOD = "TIME_SLICER_AVERAGE"
# When a point was computed: this long after its period starts (or now, if sooner); `updatedAt` equals it.
CREATED_AFTER = timedelta(minutes=10)


def failure(status: int, message: str, headers: Mapping[str, str] | None = None) -> ApiError:
    return ApiError(status, {"status": "error", "message": message}, headers)


def check_access(state: SimulatorState, path: str, token: str, params: Mapping[str, str]) -> None:
    """401 without a known token, 404 for an unknown zone, 403 for what the plan does not cover."""
    plan = state.plan_of(token)
    if plan is None:
        raise failure(401, "Invalid authentication token: check the auth-token header")
    zone = params.get("zone", "")
    if zone not in state.zones:
        raise failure(404, f"Zone '{zone}' does not exist")
    if plan != FREE:
        return
    if path not in FREE_PATHS:
        raise failure(403, f"Your plan does not give access to {path}; upgrade to a paid plan")
    if zone != state.config.free_plan_zone:
        raise failure(403, f"Your free plan covers zone {state.config.free_plan_zone} only, not {zone}")
    if params.get("temporalGranularity", "hourly") != "hourly":
        raise failure(403, "Your free plan covers hourly data only")


def serve(state: SimulatorState, path: str, params: Mapping[str, str]) -> dict[str, Any]:
    zone, factor, step = params["zone"], _factor(params), _step(params)
    newest = floor_to(state.now(), step)
    if path == LATEST_PATH:
        return _point(state, zone, newest, newest, factor)
    if path == HISTORY_PATH:
        times = _grid(newest - HISTORY_SPAN + step, newest + step, step)
        return {"zone": zone, "history": [_point(state, zone, moment, newest, factor) for moment in times]}
    if path == PAST_RANGE_PATH:
        start, end = _time(params, "start"), _time(params, "end")
        if end <= start or end - start > PAST_RANGE_CHUNKS[params.get("temporalGranularity", "hourly")]:
            raise failure(400, "start must be before end, and the range within the maximum for the granularity")
        times = _grid(start, min(end, newest + step), step)
        return {"zone": zone, "data": [_point(state, zone, moment, newest, factor) for moment in times]}
    return _forecast(zone, newest, step, factor, params, state)


def _forecast(
    zone: str, newest: datetime, step: timedelta, factor: str, params: Mapping[str, str], state: SimulatorState
) -> dict[str, Any]:
    raw = params.get("horizonHours", "24")
    low, high = FORECAST_HORIZON_HOURS
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise failure(400, f"horizonHours must be a whole number from {low} to {high}")
    times = _grid(newest + step, newest + step + timedelta(hours=int(raw)), step)
    points = [
        {"carbonIntensity": intensity(zone, state.zones[zone], t, factor), "datetime": api_time(t)} for t in times
    ]
    return {"zone": zone, "forecast": points, "updatedAt": api_time(newest)}


def _point(state: SimulatorState, zone: str, moment: datetime, newest: datetime, factor: str) -> dict[str, Any]:
    estimated = newest - moment < timedelta(hours=state.config.estimated_hours)
    created = api_time(min(moment + CREATED_AFTER, state.now()))
    return {
        "zone": zone,
        "carbonIntensity": intensity(zone, state.zones[zone], moment, factor),
        "datetime": api_time(moment),
        "updatedAt": created,
        "createdAt": created,
        "emissionFactorType": factor,
        "isEstimated": estimated,
        "estimationMethod": ESTIMATION_METHOD if estimated else None,
    }


def _grid(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    """The period starts on the granularity's grid in [start, end)."""
    moment = floor_to(start, step)
    moment = moment if moment == start else moment + step
    times = []
    while moment < end:
        times.append(moment)
        moment += step
    return times


def _factor(params: Mapping[str, str]) -> str:
    factor = params.get("emissionFactorType", "lifecycle")
    if factor not in EMISSION_FACTOR_TYPES:
        raise failure(400, f"emissionFactorType must be one of {', '.join(EMISSION_FACTOR_TYPES)}")
    return factor


def _step(params: Mapping[str, str]) -> timedelta:
    granularity = params.get("temporalGranularity", "hourly")
    if granularity not in GRANULARITIES:
        raise failure(400, f"temporalGranularity must be one of {', '.join(GRANULARITIES)}")
    return GRANULARITIES[granularity]


def _time(params: Mapping[str, str], name: str) -> datetime:
    try:
        value = datetime.fromisoformat(params[name])
    except (KeyError, ValueError):
        raise failure(400, f"{name} must be an ISO 8601 datetime") from None
    if value.tzinfo is None:
        raise failure(400, f"{name} must include a timezone")
    return value


DATA_PATHS = frozenset({LATEST_PATH, HISTORY_PATH, PAST_RANGE_PATH, FORECAST_PATH})
