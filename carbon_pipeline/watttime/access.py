"""What a WattTime account may read, parsed from ``/v3/my-access``.

WattTime answers a request outside the account's plan with a 403 every time it is made, so the pipeline
reads the plan instead of finding it out interval by interval. The reply is nested (signal types, their
regions, each region's endpoints, each endpoint's models); it is parsed whole into frozen dataclasses, and
any part of it of an unexpected shape is an ``AccessShapeError`` naming where and what, never a guess.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

HISTORICAL = "v3/historical"
FORECAST = "v3/forecast"
SIGNAL_INDEX = "v3/signal-index"
KNOWN_ENDPOINTS = (HISTORICAL, FORECAST, SIGNAL_INDEX)


class AccessShapeError(ValueError):
    """A ``/v3/my-access`` reply whose shape is not the documented one: the plan it describes is unknown."""


@dataclass(frozen=True)
class ModelAccess:
    """One model of an endpoint, and the first moment it has data for (how far back history goes)."""

    model: str
    data_start: datetime


@dataclass(frozen=True)
class EndpointAccess:
    endpoint: str
    models: tuple[ModelAccess, ...]

    @property
    def data_start(self) -> datetime | None:
        """The earliest data any of its models has: how far back this endpoint can be asked."""
        return min((model.data_start for model in self.models), default=None)


@dataclass(frozen=True)
class RegionAccess:
    """A region the account may read for one signal type, through the endpoints listed."""

    region: str
    full_name: str
    parent: str | None
    period_seconds: int
    endpoints: tuple[EndpointAccess, ...]

    def endpoint(self, name: str) -> EndpointAccess | None:
        return next((endpoint for endpoint in self.endpoints if endpoint.endpoint == name), None)

    def allows(self, name: str) -> bool:
        return self.endpoint(name) is not None


@dataclass(frozen=True)
class SignalAccess:
    signal_type: str
    regions: tuple[RegionAccess, ...]


@dataclass(frozen=True)
class AccountAccess:
    """The whole plan: per signal type, the regions it covers."""

    signals: tuple[SignalAccess, ...]

    def region(self, signal_type: str, region: str) -> RegionAccess | None:
        """``region`` for ``signal_type``, or None when the plan does not list it."""
        for signal in self.signals:
            if signal.signal_type == signal_type:
                return next((entry for entry in signal.regions if entry.region == region), None)
        return None


def parse_my_access(payload: Mapping[str, Any]) -> AccountAccess:
    """The plan ``payload`` (a ``/v3/my-access`` reply) describes; AccessShapeError when it is malformed."""
    signals = _items(payload, "signal_types", "my-access")
    return AccountAccess(tuple(_signal(entry, f"signal_types[{index}]") for index, entry in enumerate(signals)))


def _signal(entry: Mapping[str, Any], where: str) -> SignalAccess:
    signal_type = _text(entry, "signal_type", where)
    where = f"signal type {signal_type}"
    regions = _items(entry, "regions", where)
    return SignalAccess(signal_type, tuple(_region(region, where, i) for i, region in enumerate(regions)))


def _region(entry: Mapping[str, Any], signal: str, index: int) -> RegionAccess:
    region = _text(entry, "region", f"{signal}, regions[{index}]")
    where = f"{signal}, region {region}"
    period = entry.get("data_point_period_seconds")
    if isinstance(period, bool) or not isinstance(period, int) or period <= 0:
        raise AccessShapeError(f"{where}: data_point_period_seconds is {period!r}, not a positive whole number")
    parent = entry.get("parent")
    if parent is not None and not isinstance(parent, str):
        raise AccessShapeError(f"{where}: parent is {parent!r}, not a region name")
    endpoints = _items(entry, "endpoints", where)
    return RegionAccess(
        region=region,
        full_name=str(entry.get("region_full_name") or region),
        parent=parent,
        period_seconds=period,
        endpoints=tuple(_endpoint(endpoint, where, i) for i, endpoint in enumerate(endpoints)),
    )


def _endpoint(entry: Mapping[str, Any], region: str, index: int) -> EndpointAccess:
    name = _text(entry, "endpoint", f"{region}, endpoints[{index}]")
    where = f"{region}, endpoint {name}"
    models = _items(entry, "models", where)
    return EndpointAccess(name, tuple(_model(model, f"{where}, models[{i}]") for i, model in enumerate(models)))


def _model(entry: Mapping[str, Any], where: str) -> ModelAccess:
    return ModelAccess(_text(entry, "model", where), _utc(_text(entry, "data_start", where), where))


def _utc(text: str, where: str) -> datetime:
    """``data_start`` as an aware UTC moment; WattTime sends a date, which is taken as UTC midnight."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise AccessShapeError(f"{where}: data_start is {text!r}, not an ISO date") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _items(entry: object, key: str, where: str) -> Sequence[Mapping[str, Any]]:
    """``entry[key]`` as a list of JSON objects, or the error saying which part is not."""
    if not isinstance(entry, Mapping):
        raise AccessShapeError(f"{where}: expected a JSON object, got {entry!r}")
    items = entry.get(key)
    if not isinstance(items, list) or not all(isinstance(item, Mapping) for item in items):
        raise AccessShapeError(f"{where}: {key} is {items!r}, not a list of JSON objects")
    return items


def _text(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise AccessShapeError(f"{where}: {key} is {value!r}, not a non-empty string")
    return value
