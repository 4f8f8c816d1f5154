"""WattTime's replies, read: signal data as typed frames, error bodies as one line, statuses as typed errors.

Forecast replies build on the same pieces in `watttime/forecasts.py`.

Parsing never drops what WattTime sent: null or non-numeric values reach validation, which reports them.
Error bodies arrive as FastAPI JSON, plain JSON or CloudFront HTML, and each status maps to the error type
the operator acts on.
"""

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import httpx
import numpy as np
import pandas as pd

from carbon_pipeline.regions import REGION_PATTERN
from carbon_pipeline.watttime.endpoints import (
    FORECAST_HISTORICAL_PATH,
    FORECAST_PATHS,
    FREE_PLAN_REGION,
    MY_ACCESS_PATH,
    REGION_FROM_LOC_PATH,
    Call,
    request_id_of,
)
from carbon_pipeline.watttime.errors import (
    WattTimeArchiveError,
    WattTimeBadRequestError,
    WattTimeError,
    WattTimeForbiddenError,
    WattTimeNoCoverageError,
    WattTimePlanError,
    WattTimeResponseError,
    WattTimeUnknownRegionError,
)

MAX_QUOTED_ERROR_CHARS = 300

# Only real JSON numbers become values; `bool` is a subclass of `int` and must not turn into 0/1.
_JSON_NUMBER_TYPES = (int, float)
_JSON_NUMBER_TYPE_SET = frozenset(_JSON_NUMBER_TYPES)

_T = TypeVar("_T")
# How an ISO-8601 time names its zone: "Z" or an offset such as +00:00.
_TIME_ZONE_SUFFIX = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")


@dataclass(frozen=True, eq=False, kw_only=True)  # eq=False: comparing DataFrames element-wise has no single truth
class SignalReply:
    """One WattTime signal reply as a typed frame plus the metadata the InfluxDB writer needs as tags.

    `frame` keeps every point WattTime sent, including null or non-numeric values (`value` NaN, original in
    `raw_value`), so that downstream validation can report them instead of the client silently dropping them.
    """

    region: str
    signal_type: str
    units: str | None
    period_seconds: int | None
    model_date: str | None
    warnings: tuple[str, ...]
    request_id: str | None
    frame: pd.DataFrame = field(repr=False)


@dataclass(frozen=True, eq=False, kw_only=True)
class HistoricalChunk(SignalReply):
    """A `/v3/historical` reply, with the window it was asked for."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class Reply:
    """A reply the transport hands on: a 200 with its decoded JSON, or a status that was not worth retrying."""

    response: httpx.Response
    payload: Any  # decoded JSON of a 200 reply, None otherwise

    @property
    def request_id(self) -> str | None:
        return request_id_of(self.response)


def json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _truncate(text: str) -> str:
    return text if len(text) <= MAX_QUOTED_ERROR_CHARS else text[:MAX_QUOTED_ERROR_CHARS] + "..."


def _validation_item(item: object) -> str:
    """One entry of FastAPI's `{"detail": [{"loc": [...], "msg": ...}]}` validation errors."""
    if isinstance(item, Mapping):
        location = ".".join(str(part) for part in item.get("loc", ()))
        return f"{location}: {item.get('msg', '')}" if location else str(item.get("msg", ""))
    return str(item)


def error_text(body: object) -> str:
    """WattTime's error bodies come in several shapes; flatten whichever arrived into one readable line."""
    if isinstance(body, Mapping):
        detail = body.get("detail")
        if isinstance(detail, list):
            return _truncate("; ".join(_validation_item(item) for item in detail))
        parts = [str(body[key]) for key in ("error", "message", "msg", "detail") if body.get(key)]
        if parts:
            return _truncate(": ".join(parts))
    return _truncate(json.dumps(body))


def _mentions(text: str, word: str | None) -> bool:
    return word is not None and re.search(rf"\b{re.escape(word)}\b", text) is not None


def status_error(call: Call, response: httpx.Response) -> WattTimeError:
    """Translate a non-retryable, non-200 data reply into the error type the operator can act on."""
    status = response.status_code
    request_id = request_id_of(response)
    body = json_or_none(response)
    if body is None:
        if status == 403:
            server = response.headers.get("server", "unknown")
            return WattTimeForbiddenError(
                f"{call.describe()}: HTTP 403 with a non-JSON body (Server: {server}); such replies come from "
                "the CloudFront edge or a proxy in front of WattTime, not from the API's plan check",
                request_id=request_id,
            )
        text = f"non-JSON body ({response.headers.get('content-type', 'no content-type')})"
    else:
        text = error_text(body)
    if status == 403 and "invalid scope" in text.lower():
        covered = "forecasts for region" if call.path in FORECAST_PATHS else "region"
        return WattTimePlanError(
            f"{call.describe()}: this WattTime account's plan does not cover {covered} {call.region}. Free "
            f"accounts may only read {FREE_PLAN_REGION}; check GET {MY_ACCESS_PATH} for the regions and endpoints "
            f"this account can read. WattTime said: {text}",
            request_id=request_id,
        )
    if status == 403:
        return WattTimeForbiddenError(f"{call.describe()}: HTTP 403: {text}", request_id=request_id)
    if status == 404 and call.path == FORECAST_HISTORICAL_PATH:
        return WattTimeArchiveError(
            f"{call.describe()}: WattTime's historical-forecast archive holds no forecast of region {call.region} "
            f"issued in this window (HTTP 404): {text}",
            request_id=request_id,
        )
    if status == 404 and call.path == REGION_FROM_LOC_PATH:
        return WattTimeNoCoverageError(
            f"{call.describe()}: no WattTime region covers this location (HTTP 404): {text}", request_id=request_id
        )
    if status in (400, 404, 422) and _mentions(text, call.region):
        return WattTimeUnknownRegionError(
            f"{call.describe()}: WattTime does not accept region {call.region} (HTTP {status}): {text}",
            request_id=request_id,
        )
    if 400 <= status < 500:
        return WattTimeBadRequestError(f"{call.describe()}: HTTP {status}: {text}", request_id=request_id)
    return WattTimeResponseError(f"{call.describe()}: unexpected HTTP {status}: {text}", request_id=request_id)


def response_error(call: Call, request_id: str | None, problem: str) -> WattTimeResponseError:
    return WattTimeResponseError(f"{call.describe()}: {problem}", request_id=request_id)


def optional_field(
    call: Call, request_id: str | None, container: Mapping[str, Any], key: str, kind: type[_T]
) -> _T | None:
    """A field that may be absent or null, but when present must have the type WattTime documents."""
    value = container.get(key)
    if value is None or isinstance(value, kind):
        return value
    raise response_error(call, request_id, f"meta field {key!r} should be {kind.__name__}, got {value!r}")


def points_frame(call: Call, request_id: str | None, points: list[Any]) -> pd.DataFrame:
    """Build the frame column-wise; a year of 5-minute points (105,120) parses in about 0.1 s."""
    try:
        times = [point["point_time"] for point in points]
        raw_values = [point["value"] for point in points]
        imputed_markers = [point.get("imputed_data_used") for point in points]
    except (KeyError, TypeError, AttributeError) as exc:
        raise response_error(
            call, request_id, f"every data point must be an object with 'point_time' and 'value' ({exc!r})"
        ) from exc
    try:
        point_time = pd.to_datetime(times, utc=True, format="ISO8601").as_unit("ns")
    except (ValueError, TypeError) as exc:
        first_line = str(exc).splitlines()[0]
        raise response_error(call, request_id, f"unparseable point_time: {first_line}") from exc
    if point_time.hasnans:
        raise response_error(call, request_id, "a data point has a null point_time")
    try:
        imputed = _imputed_array(imputed_markers)
    except (ValueError, TypeError) as exc:
        raise response_error(call, request_id, f"imputed_data_used must be true/false: {exc}") from exc
    return pd.DataFrame(
        {
            "point_time": point_time,
            "value": _numeric_values(raw_values),
            "raw_value": pd.array(raw_values, dtype=object),
            "imputed": imputed,
        }
    )


def _numeric_values(raw_values: list[Any]) -> np.ndarray:
    """Real JSON numbers as floats, anything else NaN; a reply of numbers only, the usual one, converts at once."""
    if set(map(type, raw_values)) <= _JSON_NUMBER_TYPE_SET:
        return np.array(raw_values, dtype=np.float64)
    return np.fromiter(
        (value if type(value) in _JSON_NUMBER_TYPES else np.nan for value in raw_values),
        dtype=np.float64,
        count=len(raw_values),
    )


def _imputed_array(markers: list[Any]) -> pd.api.extensions.ExtensionArray:
    """Nullable booleans; markers that are all true/false skip pandas' per-element inference."""
    if set(map(type, markers)) <= {bool}:
        return pd.arrays.BooleanArray(np.array(markers, dtype=bool), np.zeros(len(markers), dtype=bool))
    return pd.array(markers, dtype="boolean")


def _warning_texts(warnings: object) -> tuple[str, ...]:
    if not isinstance(warnings, list):
        return ()
    return tuple(
        f"{item.get('type', 'warning')}: {item.get('message', '')}" if isinstance(item, Mapping) else str(item)
        for item in warnings
    )


@dataclass(frozen=True)
class SignalMeta:
    """What every signal reply's `meta` says about its points: the tags the writer stores with them."""

    units: str | None
    period_seconds: int | None
    model_date: str | None
    warnings: tuple[str, ...]


def signal_document(call: Call, reply: Reply) -> tuple[list[Any], Mapping[str, Any], SignalMeta]:
    """The `data` list, the raw `meta` object and its parsed fields of a `{"data": [...], "meta": {...}}` reply."""
    payload, request_id = reply.payload, reply.request_id
    if not isinstance(payload, Mapping) or not isinstance(payload.get("data"), list):
        raise response_error(call, request_id, "expected a JSON object with a 'data' list")
    meta = payload.get("meta")
    if not isinstance(meta, Mapping):
        raise response_error(call, request_id, "the reply has no 'meta' object")
    model = optional_field(call, request_id, meta, "model", dict)
    parsed = SignalMeta(
        units=optional_field(call, request_id, meta, "units", str),
        period_seconds=optional_field(call, request_id, meta, "data_point_period_seconds", int),
        model_date=None if model is None else optional_field(call, request_id, model, "date", str),
        warnings=_warning_texts(meta.get("warnings")),
    )
    return payload["data"], meta, parsed


def last_updated_times(call: Call, request_id: str | None, points: list[Any], updated_since: datetime) -> pd.Series:
    """When each point's value was published or last revised, UTC, from a reply to `updated_since`.

    Such a reply is only of use if it dates every point: a missing, zone-less or unparseable `last_updated` is
    refused, and so is one before `updated_since`, which would mean the filter was not applied.
    """
    raw = [point.get("last_updated") for point in points]
    undated = [point["point_time"] for point, value in zip(points, raw, strict=True) if not isinstance(value, str)]
    if undated:
        raise response_error(
            call, request_id, f"{len(undated)} point(s) without a last_updated time, the first at {undated[0]}"
        )
    zoneless = [value for value in raw if not _TIME_ZONE_SUFFIX.search(value)]
    if zoneless:
        raise response_error(call, request_id, f"last_updated {zoneless[0]!r} has no timezone")
    try:
        times = pd.Series(pd.to_datetime(raw, utc=True, format="ISO8601").as_unit("ns"), name="last_updated")
    except (ValueError, TypeError) as exc:
        raise response_error(call, request_id, f"unparseable last_updated: {str(exc).splitlines()[0]}") from exc
    early = times < pd.Timestamp(updated_since)
    if early.any():
        first = int(early.to_numpy().argmax())
        raise response_error(
            call,
            request_id,
            f"point {points[first]['point_time']} was last updated at {raw[first]}, before updated_since "
            f"{updated_since.isoformat()}: the reply ignored the filter",
        )
    return times


def parse_signal(
    call: Call,
    reply: Reply,
    *,
    region: str,
    signal_type: str,
    window: tuple[datetime, datetime],
    updated_since: datetime | None = None,
) -> HistoricalChunk:
    """Parse a `/v3/historical` reply for the window it was asked for.

    A reply to `updated_since` also gets the frame column `last_updated` (`last_updated_times`).
    """
    data, _, meta = signal_document(call, reply)
    frame = points_frame(call, reply.request_id, data)
    if updated_since is not None:
        frame["last_updated"] = last_updated_times(call, reply.request_id, data, updated_since)
    return HistoricalChunk(
        region=region,
        signal_type=signal_type,
        start=window[0],
        end=window[1],
        units=meta.units,
        period_seconds=meta.period_seconds,
        model_date=meta.model_date,
        warnings=meta.warnings,
        request_id=reply.request_id,
        frame=frame,
    )


@dataclass(frozen=True)
class RegionLocation:
    """The WattTime region serving a location for one signal type: the code to put in CARBON_REGIONS."""

    region: str
    full_name: str
    signal_type: str
    request_id: str | None


def parse_region_location(call: Call, reply: Reply, *, signal_type: str) -> RegionLocation:
    """Read `{"region", "region_full_name", "signal_type"}`; a region code that could not be used is refused."""
    payload, request_id = reply.payload, reply.request_id
    if not isinstance(payload, Mapping):
        raise response_error(call, request_id, "expected a JSON object")
    region, full_name = payload.get("region"), payload.get("region_full_name")
    if not isinstance(region, str) or not REGION_PATTERN.match(region):
        raise response_error(call, request_id, f"'region' should be a region code, got {region!r}")
    if not isinstance(full_name, str) or not full_name.strip():
        raise response_error(call, request_id, f"'region_full_name' should be a name, got {full_name!r}")
    answered_signal = payload.get("signal_type", signal_type)
    if answered_signal != signal_type:
        raise response_error(call, request_id, f"asked for {signal_type}, the reply is for {answered_signal!r}")
    return RegionLocation(region, full_name.strip(), signal_type, request_id)
