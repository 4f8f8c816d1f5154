"""What a request to the simulated API asks for: its parameters read and checked as the real API checks them."""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from carbon_pipeline.watttime.simulator.api_errors import (
    detail,
    invalid_query,
    invalid_scope,
    missing,
    too_many_requests,
    unauthorized,
    unprocessable,
)
from carbon_pipeline.watttime.simulator.catalogue import SIGNAL_UNITS
from carbon_pipeline.watttime.simulator.state import SimulatorState

MAX_HORIZON_HOURS = 72
_BOOLEANS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}


@dataclass(frozen=True)
class Request:
    path: str
    params: Mapping[str, str]
    body: bytes
    authorization: str
    user: str = ""


@dataclass(frozen=True)
class Series:
    """One signal of one region from one model: what every data endpoint serves."""

    region: str
    signal_type: str
    model: str
    model_age: int  # 0 for the newest model, 1 for the one before...
    period_seconds: int


def basic_credentials(authorization: str) -> tuple[str, str]:
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    username, _, password = decoded.partition(":")
    return username, password


def authenticate(state: SimulatorState, request: Request) -> str:
    scheme, _, token = request.authorization.partition(" ")
    user = state.user_for_token(token) if scheme.lower() == "bearer" and token else None
    if user is None:
        raise unauthorized()
    if not state.allow("data", user, state.config.data_rate_limit):
        raise too_many_requests()
    return user


def require_params(request: Request, *names: str) -> None:
    absent = [missing("query", name) for name in names if name not in request.params]
    if absent:
        raise unprocessable(*absent)


def signal_type_of(request: Request) -> str:
    """`signal_type` is an enumeration, so an unknown one is a FastAPI 422."""
    signal_type = request.params["signal_type"]
    if signal_type not in SIGNAL_UNITS:
        allowed = ", ".join(f"'{name}'" for name in SIGNAL_UNITS)
        message = f"value is not a valid enumeration member; permitted: {allowed}"
        raise unprocessable(detail("query", "signal_type", msg=message, error_type="type_error.enum"))
    return signal_type


def series_query(state: SimulatorState, request: Request) -> Series:
    """Validates what every data endpoint shares: region, signal type, plan and model (default: the newest)."""
    series = unchecked_series(state, request)
    plan = state.plan_regions(request.user)
    if plan is not None and series.region not in plan:
        raise invalid_scope()
    return series


def unchecked_series(state: SimulatorState, request: Request) -> Series:
    """Region, signal type and model of a data request, without the plan check an endpoint may do its own way."""
    require_params(request, "region", "signal_type")
    region, signal_type = request.params["region"], signal_type_of(request)
    served = state.signal_regions(signal_type)
    if region not in served:
        raise invalid_query(f"Unknown region '{region}' for signal_type {signal_type}")
    model = request.params.get("model", state.models[0])
    if model not in state.models:
        raise invalid_query(f"Unknown model '{model}' for region '{region}'")
    return Series(region, signal_type, model, state.models.index(model), served[region].period_seconds)


def timestamp(request: Request, name: str) -> datetime:
    raw = request.params[name]
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        message = "invalid datetime format"
        raise unprocessable(detail("query", name, msg=message, error_type="value_error.datetime")) from None
    if value.tzinfo is None:
        raise invalid_query(f"'{name}' must include a timezone, for example {raw}+00:00")
    return value.astimezone(UTC)


def time_range(request: Request) -> tuple[datetime, datetime]:
    """The inclusive `start` and `end` of a range query, in order."""
    require_params(request, "start", "end")
    start, end = timestamp(request, "start"), timestamp(request, "end")
    if end < start:
        raise invalid_query("'end' must not be before 'start'")
    return start, end


def boolean(request: Request, name: str) -> bool:
    raw = request.params.get(name, "false").lower()
    if raw not in _BOOLEANS:
        message = "value could not be parsed to a boolean"
        raise unprocessable(detail("query", name, msg=message, error_type="type_error.bool"))
    return _BOOLEANS[raw]


def horizon_hours(request: Request) -> int:
    raw = request.params.get("horizon_hours", "24")
    if not raw.isdigit() or int(raw) > MAX_HORIZON_HOURS:
        message = f"ensure this value is an integer from 0 to {MAX_HORIZON_HOURS}"
        raise unprocessable(detail("query", "horizon_hours", msg=message, error_type="value_error.number"))
    return int(raw)


def degrees(request: Request, name: str) -> float:
    """A coordinate as FastAPI reads a float; range is not checked, a point off the map has no coverage."""
    try:
        value = float(request.params[name])
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        message = "value is not a valid float"
        raise unprocessable(detail("query", name, msg=message, error_type="type_error.float"))
    return value


def json_object(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.body or b"null")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise unprocessable(detail("body", msg="a JSON object is required", error_type="type_error.dict"))
    return body
