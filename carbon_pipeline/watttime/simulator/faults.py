"""Injectable failures, so clients can be tested against every way the real API misbehaves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from carbon_pipeline.watttime.simulator.signal import moer_value

HTTP_KINDS = frozenset(
    {"status", "unauthorized", "invalid_scope", "html", "malformed_json", "slow", "reset", "truncated"}
)
DATA_KINDS = frozenset(
    {
        "nulls",
        "out_of_range",
        "duplicates",
        "wrong_units",
        "model_date",
        "outside_window",
        "empty",
        "non_numeric",
        "missing_point",
    }
)
DATA_PATHS = frozenset({"/v3/historical", "/v3/forecast"})
ALTERNATE_MODEL_DATE = "2024-06-01"


@dataclass(frozen=True)
class Fault:
    """One queued failure, applied to the next `count` matching requests.

    `path` is an exact request path ("/login" works too); None means any /v3/ path,
    or for data-level kinds any of /v3/historical and /v3/forecast.

    HTTP-level kinds (served before authentication, like an edge or gateway would):

    ===============  ==================================================================
    status           reply `status` with a JSON `{"error", "message"}` body
    unauthorized     401, exactly like an expired token
    invalid_scope    403 with WattTime's "Invalid scope ..." plan message
    html             403 from the CloudFront edge: text/html, `Server: CloudFront`
    malformed_json   200, application/json, body cut off mid-document
    slow             sleep `delay_seconds`, then answer normally
    reset            close the socket with RST and no reply at all
    truncated        send a Content-Length larger than the body, then close
    ===============  ==================================================================

    `retry_after` adds a `Retry-After` header to every kind that replies with an error.

    Data-level kinds (a 200 reply whose content is wrong):

    ===============  ==================================================================
    nulls            every fifth value is null
    out_of_range     first value 99999.0, last value -5.0
    duplicates       the middle point appears twice
    wrong_units      meta.units is "percentile"
    model_date       meta.model.date is 2024-06-01, so a range mixes model dates
    outside_window   one extra point five minutes after the requested end
    empty            data is []
    non_numeric      the middle value is the string "n/a"
    missing_point    the middle point is dropped
    ===============  ==================================================================
    """

    kind: str
    count: int = 1
    path: str | None = None
    retry_after: int | None = None
    delay_seconds: float = 0
    status: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in HTTP_KINDS | DATA_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}")
        if self.count < 1:
            raise ValueError("count must be at least 1")
        if (self.kind == "status") != (self.status is not None):
            raise ValueError("status is required for kind 'status' and only for it")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError("status must be an HTTP status code")

    @property
    def data_level(self) -> bool:
        return self.kind in DATA_KINDS

    def matches(self, path: str) -> bool:
        if self.path is not None:
            return path == self.path
        return path in DATA_PATHS if self.data_level else path.startswith("/v3/")


def corrupt(kind: str, body: dict[str, Any], window_end: datetime) -> None:
    """Damages a data reply in place the way a data-level fault describes."""
    data: list[dict[str, Any]] = body["data"]
    meta: dict[str, Any] = body["meta"]
    middle = len(data) // 2
    if kind == "nulls":
        for point in data[::5]:
            point["value"] = None
    elif kind == "out_of_range" and data:
        data[0]["value"] = 99999.0
        data[-1]["value"] = -5.0
    elif kind == "duplicates" and data:
        data.insert(middle, dict(data[middle]))
    elif kind == "wrong_units":
        meta["units"] = "percentile"
    elif kind == "model_date":
        meta["model"]["date"] = ALTERNATE_MODEL_DATE
    elif kind == "outside_window":
        late = window_end + timedelta(minutes=5)
        data.append({"point_time": late.isoformat(), "value": moer_value(meta["region"], late)})
    elif kind == "empty":
        data.clear()
    elif kind == "non_numeric" and data:
        data[middle]["value"] = "n/a"
    elif kind == "missing_point" and data:
        del data[middle]
