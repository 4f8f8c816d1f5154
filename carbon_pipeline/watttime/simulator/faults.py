"""Injectable failures, so clients can be tested against every way the real API misbehaves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from carbon_pipeline.watttime.simulator.signal import moer_value

HTTP_KINDS = frozenset(
    {
        "status",
        "unauthorized",
        "invalid_scope",
        "outside_archive",
        "html",
        "malformed_json",
        "slow",
        "reset",
        "truncated",
    }
)
# Kinds that damage a forecast and have no meaning for /v3/historical.
FORECAST_KINDS = frozenset({"short_horizon", "stale_generated_at"})
DATA_KINDS = (
    frozenset(
        {
            "nulls",
            "out_of_range",
            "duplicates",
            "conflicting_duplicates",
            "wrong_units",
            "model_date",
            "outside_window",
            "empty",
            "non_numeric",
            "missing_point",
        }
    )
    | FORECAST_KINDS
)
FORECAST_DATA_PATHS = frozenset({"/v3/forecast", "/v3/forecast/historical"})
DATA_PATHS = frozenset({"/v3/historical"}) | FORECAST_DATA_PATHS
ALTERNATE_MODEL_DATE = "2024-06-01"
STALE_BY = timedelta(hours=1)


@dataclass(frozen=True)
class Fault:
    """One queued failure, applied to the next `count` matching requests.

    `path` is an exact request path ("/login" works too); None means any /v3/ path, or for data-level kinds
    any of /v3/historical, /v3/forecast and /v3/forecast/historical (the forecast ones only, for kinds that
    only make sense for a forecast); /v3/signal-index takes data-level kinds when named as `path`, and then
    they damage its one point. `region`, when set, limits the fault to requests for that region, so one
    region of several can fail whichever order their requests arrive in.

    HTTP-level kinds (served before authentication, like an edge or gateway would):

    ===============  ==================================================================
    status           reply `status` with a JSON `{"error", "message"}` body
    unauthorized     401, exactly like an expired token
    invalid_scope    403 with WattTime's "Invalid scope ..." plan message (with `region` and
                     a forecast path: a region without forecast access)
    outside_archive  404 from the historical-forecast archive: nothing for that window
    html             403 from the CloudFront edge: text/html, `Server: CloudFront`
    malformed_json   200, application/json, body cut off mid-document
    slow             sleep `delay_seconds`, then answer normally
    reset            close the socket with RST and no reply at all
    truncated        send a Content-Length larger than the body, then close
    ===============  ==================================================================

    `retry_after` adds a `Retry-After` header to every kind that replies with an error.

    Data-level kinds (a 200 reply whose content is wrong; on /v3/forecast/historical each forecast in the
    reply is damaged alike):

    ======================  ===============================================================
    nulls                   every fifth value is null
    out_of_range            first value 99999.0, last value -5.0
    duplicates              the middle point appears twice, an exact copy
    conflicting_duplicates  the middle point appears twice, the copy's value 1.0 higher
    wrong_units             meta.units is "percentile"
    model_date              meta.model.date is 2024-06-01, so a range mixes model dates
    outside_window          one extra point five minutes after the requested end (historical
                            forecasts: one extra forecast issued five minutes after it)
    empty                   data is []
    non_numeric             the middle value is the string "n/a"
    missing_point           the middle point is dropped: a gap inside the series
    short_horizon           forecasts only: the second half of the points is missing
    stale_generated_at      forecasts only: an hour-old forecast, generated_at and every point
                            time one hour earlier than asked for
    ======================  ===============================================================
    """

    kind: str
    count: int = 1
    path: str | None = None
    retry_after: int | None = None
    delay_seconds: float = 0
    status: int | None = None
    region: str | None = None

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

    def matches(self, path: str, region: str | None = None) -> bool:
        if self.region is not None and region != self.region:
            return False
        if self.path is not None:
            return path == self.path
        if self.kind in FORECAST_KINDS:
            return path in FORECAST_DATA_PATHS
        return path in DATA_PATHS if self.data_level else path.startswith("/v3/")


def corrupt(kind: str, body: dict[str, Any], window_end: datetime) -> None:
    """Damages a data reply in place the way a data-level fault describes."""
    data: list[dict[str, Any]] = body["data"]
    meta: dict[str, Any] = body["meta"]
    forecasts = [item for item in data if "forecast" in item]
    if kind == "wrong_units":
        meta["units"] = "percentile"
    elif kind == "model_date":
        meta["model"]["date"] = ALTERNATE_MODEL_DATE
    elif kind == "empty":
        data.clear()
    elif kind == "stale_generated_at":
        _make_stale(body)
    elif kind == "outside_window" and forecasts:
        late = window_end + timedelta(minutes=5)
        data.append({**forecasts[-1], "generated_at": late.isoformat()})
    elif kind == "outside_window":
        late = window_end + timedelta(minutes=5)
        data.append({"point_time": late.isoformat(), "value": moer_value(meta["region"], late)})
    else:
        for points in [item["forecast"] for item in forecasts] or [data]:
            _damage_points(kind, points)


def _damage_points(kind: str, points: list[dict[str, Any]]) -> None:
    """The point-level faults, applied to one series."""
    middle = len(points) // 2
    if kind == "nulls":
        for point in points[::5]:
            point["value"] = None
    elif kind == "out_of_range" and points:
        points[0]["value"] = 99999.0
        points[-1]["value"] = -5.0
    elif kind == "duplicates" and points:
        points.insert(middle, dict(points[middle]))
    elif kind == "conflicting_duplicates" and points:
        points.insert(middle + 1, {**points[middle], "value": points[middle]["value"] + 1.0})
    elif kind == "non_numeric" and points:
        points[middle]["value"] = "n/a"
    elif kind == "missing_point" and points:
        del points[middle]
    elif kind == "short_horizon":
        del points[(len(points) + 1) // 2 :]


def _make_stale(body: dict[str, Any]) -> None:
    """Every time in the reply an hour earlier: the forecast WattTime would still serve if its model stalled."""
    meta = body["meta"]
    if "generated_at" in meta:
        meta["generated_at"] = _earlier(meta["generated_at"])
    series = [body["data"]] if "generated_at" in meta else []
    for item in body["data"]:
        if "forecast" in item:
            item["generated_at"] = _earlier(item["generated_at"])
            series.append(item["forecast"])
    for points in series:
        for point in points:
            point["point_time"] = _earlier(point["point_time"])


def _earlier(moment: str) -> str:
    return (datetime.fromisoformat(moment) - STALE_BY).isoformat()
