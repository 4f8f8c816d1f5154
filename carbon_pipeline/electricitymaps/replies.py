"""Electricity Maps replies read into frozen points, and error replies into typed errors.

A reply is taken whole or refused whole: one null, non-numeric or impossible value, a point of another zone
or emission factor type, or a point outside the requested range refuses the reply with an error naming the
value, the zone and the time, so nothing half-validated reaches storage.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import httpx

from carbon_pipeline.electricitymaps.endpoints import Query
from carbon_pipeline.electricitymaps.errors import (
    ElectricityMapsAuthError,
    ElectricityMapsBadRequestError,
    ElectricityMapsError,
    ElectricityMapsPlanError,
    ElectricityMapsResponseError,
    ElectricityMapsUnknownZoneError,
)

# No grid emits more than this per kWh (lignite, lifecycle, is about 1,100); above it a value is an error.
MAX_INTENSITY = 2000.0
# How much of an error body a message quotes; the body never holds the token, but may be a long HTML page.
QUOTED_BODY_CHARACTERS = 200


@dataclass(frozen=True)
class IntensityPoint:
    """Average carbon intensity of one zone at one time (gCO2eq/kWh), with how it was obtained."""

    zone: str
    time: datetime  # start of the period, UTC
    carbon_intensity: float
    emission_factor_type: str
    is_estimated: bool
    estimation_method: str | None
    updated_at: datetime | None
    created_at: datetime | None


def parse_point(item: object, query: Query, emission_factor_type: str) -> IntensityPoint:
    if not isinstance(item, Mapping):
        raise ElectricityMapsResponseError(f"a point is {type(item).__name__}, not an object", query=query)
    moment = _time(item.get("datetime"), "datetime", query)
    where = f"point {moment.isoformat()}"
    zone = item.get("zone", query.zone)
    if zone != query.zone:
        raise ElectricityMapsResponseError(f"{where} is for zone {zone!r}", query=query)
    factor = item.get("emissionFactorType", emission_factor_type)
    if factor != emission_factor_type:
        raise ElectricityMapsResponseError(f"{where} uses emissionFactorType {factor!r}", query=query)
    if query.window is not None and not query.window[0] <= moment <= query.window[1]:
        raise ElectricityMapsResponseError(f"{where} lies outside the requested range", query=query)
    estimated = item.get("isEstimated", False)
    method = item.get("estimationMethod")
    if not isinstance(estimated, bool) or not (method is None or isinstance(method, str)):
        raise ElectricityMapsResponseError(
            f"{where}: isEstimated {estimated!r} / estimationMethod {method!r} are not a flag and a name", query=query
        )
    return IntensityPoint(
        zone=query.zone,
        time=moment,
        carbon_intensity=_intensity(item.get("carbonIntensity"), where, query),
        emission_factor_type=emission_factor_type,
        is_estimated=estimated,
        estimation_method=method,
        updated_at=_optional_time(item.get("updatedAt"), "updatedAt", query),
        created_at=_optional_time(item.get("createdAt"), "createdAt", query),
    )


@dataclass(frozen=True)
class IntensityForecast:
    """One /forecast reply: when Electricity Maps computed it and its points, consecutive on the granularity."""

    zone: str
    updated_at: datetime
    points: tuple[IntensityPoint, ...]


def parse_forecast(body: object, query: Query, emission_factor_type: str, step: timedelta) -> IntensityForecast:
    """The reply's `forecast` points and `updatedAt`, refused whole when empty or not consecutive `step`s.

    Windows are counted in points, so a missing or repeated hour would stretch or shrink them unseen.
    """
    points = parse_points(body, "forecast", query, emission_factor_type)
    if not points:
        raise ElectricityMapsResponseError("the reply's forecast has no point", query=query)
    for earlier, later in pairwise(points):
        if later.time - earlier.time != step:
            raise ElectricityMapsResponseError(
                f"point {later.time.isoformat()} comes {later.time - earlier.time} after the one before, not {step}",
                query=query,
            )
    assert isinstance(body, Mapping)  # parse_points refused anything else
    return IntensityForecast(query.zone, _time(body.get("updatedAt"), "updatedAt", query), tuple(points))


def parse_points(body: object, key: str, query: Query, emission_factor_type: str) -> list[IntensityPoint]:
    """The points under `key` ("history" or "data"), in time order, without repeated times."""
    items = body.get(key) if isinstance(body, Mapping) else None
    if not isinstance(items, list):
        raise ElectricityMapsResponseError(f"the reply has no {key!r} list", query=query)
    points = sorted((parse_point(item, query, emission_factor_type) for item in items), key=lambda p: p.time)
    for earlier, later in pairwise(points):
        if earlier.time == later.time:
            raise ElectricityMapsResponseError(f"point {later.time.isoformat()} appears twice", query=query)
    return points


def status_error(response: httpx.Response, query: Query) -> ElectricityMapsError:
    """The typed error for a non-200 reply that retrying cannot fix."""
    status, said = response.status_code, _message(response)
    detail = f"HTTP {status}: {said}"
    if status == 401:
        return ElectricityMapsAuthError(f"{detail} (check ELECTRICITYMAPS_API_TOKEN)", query=query)
    if status == 403:
        return ElectricityMapsPlanError(f"{detail} (outside the token's plan)", query=query)
    if status == 404 or (status == 400 and "zone" in said.lower()):
        return ElectricityMapsUnknownZoneError(f"{detail} (unknown zone)", query=query)
    if status == 400:
        return ElectricityMapsBadRequestError(detail, query=query)
    return ElectricityMapsResponseError(f"unexpected {detail}", query=query)


def _message(response: httpx.Response) -> str:
    try:
        body: Any = response.json()
    except ValueError:
        return response.text[:QUOTED_BODY_CHARACTERS] or "(empty body)"
    if isinstance(body, Mapping):
        for key in ("message", "error", "detail"):
            if isinstance(body.get(key), str):
                return str(body[key])[:QUOTED_BODY_CHARACTERS]
    return str(body)[:QUOTED_BODY_CHARACTERS]


def _intensity(value: object, where: str, query: Query) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ElectricityMapsResponseError(f"{where}: carbonIntensity {value!r} is not a number", query=query)
    if not math.isfinite(value) or not 0 <= value <= MAX_INTENSITY:
        raise ElectricityMapsResponseError(
            f"{where}: carbonIntensity {value!r} is outside 0 to {MAX_INTENSITY:g} gCO2eq/kWh", query=query
        )
    return float(value)


def _time(value: object, name: str, query: Query) -> datetime:
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ElectricityMapsResponseError(f"{name} {value!r} is not an ISO 8601 time with a zone", query=query)
    return parsed.astimezone(UTC)


def _optional_time(value: object, name: str, query: Query) -> datetime | None:
    return None if value is None else _time(value, name, query)
