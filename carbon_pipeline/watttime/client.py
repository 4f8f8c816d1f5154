"""Synchronous, thread-safe client for the WattTime v3 API.

It is a plain class so that scripts and tests can use it without Dagster; `watttime/resource.py` wraps it.
Everything WattTime documents as a trap is handled here once: the 30-minute token, the 100-logins and
3,000-requests-per-5-minutes limits, inclusive `start`/`end` bounds, the 32-day window limit, transient
429/5xx replies, and error bodies that are sometimes JSON and sometimes CloudFront HTML.
"""

import email.utils
import json
import logging
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any, NoReturn, TypeVar

import httpx
import numpy as np
import pandas as pd
from pyrate_limiter import Duration, InMemoryBucket, Limiter, Rate
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, stop_after_delay
from tenacity.wait import wait_random_exponential

from carbon_pipeline import __version__
from carbon_pipeline.regions import validate_region
from carbon_pipeline.watttime.errors import (
    WattTimeAuthError,
    WattTimeBadRequestError,
    WattTimeError,
    WattTimeForbiddenError,
    WattTimePlanError,
    WattTimeResponseError,
    WattTimeTLSError,
    WattTimeUnavailableError,
    WattTimeUnknownRegionError,
    WattTimeUsernameTakenError,
)

WATTTIME_BASE_URL = "https://api.watttime.org"
# What WattTime grants every new account, per its SDK README and its "Invalid scope" message.
FREE_PLAN_REGION = "CAISO_NORTH"
USER_AGENT = {"User-Agent": f"carbon-pipeline/{__version__}"}
DEFAULT_SIGNAL_TYPE = "co2_moer"

LOGIN_PATH = "/login"
HISTORICAL_PATH = "/v3/historical"
FORECAST_PATH = "/v3/forecast"
MY_ACCESS_PATH = "/v3/my-access"
REGISTER_PATH = "/register"
# WattTime's SDK gives /register 10 s to connect and 60 s to answer.
REGISTER_CONNECT_TIMEOUT_SECONDS = 10.0
REGISTER_TIMEOUT_SECONDS = 60.0

# WattTime tokens live 30 minutes; the client tracks that on its own clock from the moment it asks for one.
TOKEN_LIFETIME_SECONDS = 30 * 60
# /v3/historical accepts at most 32 days; 30 leaves room and keeps a 31-day month at two calls.
MAX_CHUNK = timedelta(days=30)
# Requests one client keeps in flight, across all threads. WattTime's legacy docs capped connections at 10 per
# IP, and at 10 requests/s a few in flight already hide the round trips of a long backfill.
MAX_CONCURRENT_REQUESTS = 4
# WattTime bounds are inclusive, so a half-open window [a, b) is requested as [a, b - 1 s]: adjacent
# windows then never share an edge point.
INCLUSIVE_END_TRIM = timedelta(seconds=1)
MAX_FORECAST_HORIZON_HOURS = 72

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
TRANSIENT_TRANSPORT_ERRORS = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    httpx.DecodingError,
)
MAX_QUOTED_ERROR_CHARS = 300

# Only real JSON numbers become values; `bool` is a subclass of `int` and must not turn into 0/1.
_JSON_NUMBER_TYPES = (int, float)
_JSON_NUMBER_TYPE_SET = frozenset(_JSON_NUMBER_TYPES)

_T = TypeVar("_T")


@dataclass(frozen=True, eq=False)  # eq=False: comparing DataFrames element-wise has no single truth value
class HistoricalChunk:
    """One WattTime reply as a typed frame plus the metadata the InfluxDB writer needs as tags.

    `frame` keeps every point WattTime sent, including null or non-numeric values (`value` NaN, original in
    `raw_value`), so that downstream validation can report them instead of the client silently dropping them.
    """

    region: str
    signal_type: str
    start: datetime
    end: datetime
    units: str | None
    period_seconds: int | None
    model_date: str | None
    warnings: tuple[str, ...]
    request_id: str | None
    frame: pd.DataFrame = field(repr=False)


@dataclass(frozen=True)
class _Call:
    """What a request was for, so every log line and error can name it."""

    path: str
    region: str | None = None
    window: tuple[datetime, datetime] | None = None
    method: str = "GET"

    def describe(self) -> str:
        parts = [f"{self.method} {self.path}"]
        if self.region is not None:
            parts.append(f"region {self.region}")
        if self.window is not None:
            parts.append(f"window [{self.window[0].isoformat()}, {self.window[1].isoformat()})")
        return ", ".join(parts)


class _Abandoned(Exception):
    """Stands in for a request not sent because another chunk of the same call already failed."""


class _TransientFailure(Exception):
    """One failed attempt worth repeating; only the last one surfaces, wrapped in a public error."""

    def __init__(
        self, detail: str, *, request_id: str | None, retry_after: float | None = None, malformed_body: bool = False
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.request_id = request_id
        self.retry_after = retry_after
        self.malformed_body = malformed_body


@dataclass(frozen=True)
class _Reply:
    response: httpx.Response
    payload: Any  # decoded JSON of a 200 reply, None otherwise

    @property
    def request_id(self) -> str | None:
        return _request_id(self.response)


def _request_id(response: httpx.Response) -> str | None:
    """WattTime support asks for this header's value when investigating a failure."""
    value: str | None = response.headers.get("x-request-id")
    return value


def validate_base_url(url: str) -> str:
    """Accept only http(s) URLs with a host; credentials embedded in a URL would end up in logs."""
    if "@" in url:  # checked first so that no message below can echo a password
        raise ValueError("WattTime base URL must not embed credentials (user:password@host)")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"WattTime base URL {url!r} is not a valid URL: {exc}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host or parsed.query or parsed.fragment:
        raise ValueError(f"WattTime base URL {url!r} must be an http:// or https:// URL with a host and no query")
    return url.rstrip("/")


def require_utc(value: datetime, name: str) -> datetime:
    """WattTime v3 rejects zone-less timestamps, and guessing a zone silently shifts data by hours."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _limiter(limit: int, interval_ms: int) -> Limiter:
    """Blocking, thread-safe sliding-window limiter; the bucket is explicit so pyrate-limiter stays quiet."""
    return Limiter(InMemoryBucket([Rate(limit, interval_ms)]))


def _per_second_limiter(requests_per_second: float) -> Limiter:
    """Express a possibly fractional rate (0.5/s) as pyrate-limiter's integer count per interval (1 per 2 s)."""
    ratio = Fraction(requests_per_second).limit_denominator(1000)
    _require(ratio.numerator >= 1, f"requests_per_second {requests_per_second} is too small")
    return _limiter(ratio.numerator, Duration.SECOND * ratio.denominator)


def _chunk_windows(start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    chunk_start = start
    while chunk_start < end:
        chunk_end = min(chunk_start + MAX_CHUNK, end)
        yield chunk_start, chunk_end
        chunk_start = chunk_end


def _retry_after_seconds(value: str | None) -> float | None:
    """Parse Retry-After as delay-seconds or an HTTP-date; anything unreadable falls back to backoff."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _json_or_none(response: httpx.Response) -> Any:
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


def _error_text(body: object) -> str:
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


def _status_error(call: _Call, response: httpx.Response) -> WattTimeError:
    """Translate a non-retryable, non-200 data reply into the error type the operator can act on."""
    status = response.status_code
    request_id = _request_id(response)
    body = _json_or_none(response)
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
        text = _error_text(body)
    if status == 403 and "invalid scope" in text.lower():
        return WattTimePlanError(
            f"{call.describe()}: this WattTime account's plan does not cover region {call.region}. Free accounts "
            f"may only read {FREE_PLAN_REGION}; check GET {MY_ACCESS_PATH} for the regions this account can read. "
            f"WattTime said: {text}",
            request_id=request_id,
        )
    if status == 403:
        return WattTimeForbiddenError(f"{call.describe()}: HTTP 403: {text}", request_id=request_id)
    if status in (400, 404, 422) and _mentions(text, call.region):
        return WattTimeUnknownRegionError(
            f"{call.describe()}: WattTime does not accept region {call.region} (HTTP {status}): {text}",
            request_id=request_id,
        )
    if 400 <= status < 500:
        return WattTimeBadRequestError(f"{call.describe()}: HTTP {status}: {text}", request_id=request_id)
    return WattTimeResponseError(f"{call.describe()}: unexpected HTTP {status}: {text}", request_id=request_id)


def _response_error(call: _Call, request_id: str | None, problem: str) -> WattTimeResponseError:
    return WattTimeResponseError(f"{call.describe()}: {problem}", request_id=request_id)


def _optional(call: _Call, request_id: str | None, container: Mapping[str, Any], key: str, kind: type[_T]) -> _T | None:
    value = container.get(key)
    if value is None or isinstance(value, kind):
        return value
    raise _response_error(call, request_id, f"meta field {key!r} should be {kind.__name__}, got {value!r}")


def _points_frame(call: _Call, request_id: str | None, points: list[Any]) -> pd.DataFrame:
    """Build the frame column-wise; a year of 5-minute points (105,120) parses in about 0.1 s."""
    try:
        times = [point["point_time"] for point in points]
        raw_values = [point["value"] for point in points]
        imputed_markers = [point.get("imputed_data_used") for point in points]
    except (KeyError, TypeError, AttributeError) as exc:
        raise _response_error(
            call, request_id, f"every data point must be an object with 'point_time' and 'value' ({exc!r})"
        ) from exc
    try:
        point_time = pd.to_datetime(times, utc=True, format="ISO8601").as_unit("ns")
    except (ValueError, TypeError) as exc:
        first_line = str(exc).splitlines()[0]
        raise _response_error(call, request_id, f"unparseable point_time: {first_line}") from exc
    if point_time.hasnans:
        raise _response_error(call, request_id, "a data point has a null point_time")
    try:
        imputed = _imputed_array(imputed_markers)
    except (ValueError, TypeError) as exc:
        raise _response_error(call, request_id, f"imputed_data_used must be true/false: {exc}") from exc
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


def _parse_signal(
    call: _Call, reply: _Reply, *, region: str, signal_type: str, window: tuple[datetime, datetime] | None
) -> HistoricalChunk:
    """Parse a `{"data": [...], "meta": {...}}` reply; `window=None` derives it from the points (forecasts)."""
    payload, request_id = reply.payload, reply.request_id
    if not isinstance(payload, Mapping) or not isinstance(payload.get("data"), list):
        raise _response_error(call, request_id, "expected a JSON object with a 'data' list")
    meta = payload.get("meta")
    if not isinstance(meta, Mapping):
        raise _response_error(call, request_id, "the reply has no 'meta' object")
    frame = _points_frame(call, request_id, payload["data"])
    period_seconds = _optional(call, request_id, meta, "data_point_period_seconds", int)
    model = _optional(call, request_id, meta, "model", dict)
    if window is None:
        window = _covered_window(call, request_id, frame, period_seconds)
    return HistoricalChunk(
        region=region,
        signal_type=signal_type,
        start=window[0],
        end=window[1],
        units=_optional(call, request_id, meta, "units", str),
        period_seconds=period_seconds,
        model_date=None if model is None else _optional(call, request_id, model, "date", str),
        warnings=_warning_texts(meta.get("warnings")),
        request_id=request_id,
        frame=frame,
    )


def _covered_window(
    call: _Call, request_id: str | None, frame: pd.DataFrame, period_seconds: int | None
) -> tuple[datetime, datetime]:
    """A forecast has no requested window: it covers its first point to the end of its last period."""
    if frame.empty or period_seconds is None:
        raise _response_error(call, request_id, "a forecast needs data points and meta.data_point_period_seconds")
    first, last = frame["point_time"].min(), frame["point_time"].max()
    return first.to_pydatetime(), (last + pd.Timedelta(seconds=period_seconds)).to_pydatetime()


def register_account(
    username: str,
    password: str,
    email: str,
    *,
    org: str | None = None,
    base_url: str = WATTTIME_BASE_URL,
    timeout_seconds: float = REGISTER_TIMEOUT_SECONDS,
) -> None:
    """Create a WattTime account: POST /register with a JSON body, as WattTime's docs and SDK send it.

    Sent exactly once: a POST whose reply was lost may still have created the account, and a blind retry would
    then report the username as taken. Failures are typed `WattTimeError`s that never quote the password and
    carry no exception chain, because httpx's exceptions hold the request and so the body with the password.
    """
    _require(bool(username) and bool(password) and bool(email), "username, password and email must all be set")
    _require(timeout_seconds > 0, "timeout_seconds must be > 0")
    url = validate_base_url(base_url)
    call = _Call(REGISTER_PATH, method="POST")
    body = {"username": username, "password": password, "email": email} | ({"org": org} if org else {})
    timeout = httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, REGISTER_CONNECT_TIMEOUT_SECONDS))
    with httpx.Client(base_url=url, timeout=timeout, headers=USER_AGENT) as http:
        outcome = _post_once(http, call, body)
    if isinstance(outcome, httpx.HTTPError):
        raise _registration_unreachable(call, url, outcome)
    if not outcome.is_success:
        raise _redacted(_registration_error(call, username, outcome), password)


def _post_once(http: httpx.Client, call: _Call, body: Mapping[str, str]) -> httpx.Response | httpx.HTTPError:
    """Return a transport failure instead of raising it, so the caller's error is raised outside its chain."""
    try:
        return http.post(call.path, json=body)
    except httpx.HTTPError as exc:
        return exc


def _registration_unreachable(call: _Call, url: str, failure: httpx.HTTPError) -> WattTimeUnavailableError:
    """Whether the request left tells whether the account may exist, and so what to do next."""
    detail = f"{type(failure).__name__}: {failure}"
    if isinstance(failure, httpx.ConnectError | httpx.ConnectTimeout):
        return WattTimeUnavailableError(
            f"{call.describe()}: could not reach WattTime at {url} ({detail}); no account was created"
        )
    return WattTimeUnavailableError(
        f"{call.describe()}: no reply from WattTime at {url} ({detail}); the account may have been created, "
        "so try logging in with it before registering again"
    )


def _registration_error(call: _Call, username: str, response: httpx.Response) -> WattTimeError:
    """Single out the replies a user answers differently from a bad request: a taken name, a busy server."""
    status, request_id = response.status_code, _request_id(response)
    if status in RETRYABLE_STATUSES:
        return WattTimeUnavailableError(
            f"{call.describe()}: WattTime could not take the registration now (HTTP {status}); try again later",
            request_id=request_id,
        )
    body = _json_or_none(response)
    text = "" if body is None else _error_text(body)
    if status == 400 and "taken" in text.lower():
        return WattTimeUsernameTakenError(
            f"{call.describe()}: the username {username!r} is already taken; choose another (WattTime said: {text})",
            request_id=request_id,
        )
    return _status_error(call, response)


def _redacted(error: WattTimeError, secret: str) -> WattTimeError:
    """Validation messages may echo the rejected input; a password must reach no log, terminal or traceback."""
    message = str(error.args[0]) if error.args else ""
    if secret not in message:
        return error
    return type(error)(message.replace(secret, "***"), request_id=error.request_id, retryable=error.retryable)


class WattTimeClient:
    """Client for WattTime v3: cached token, client-side rate limits, bounded retries, typed errors.

    Safe to share between threads: the HTTP connection pool and the limiters are thread-safe, a lock around
    login means concurrent threads that find the token missing, stale or rejected trigger a single login, and
    at most `max_concurrent_requests` requests are in flight at once whichever threads send them.
    The retry budget is `max_attempts` and `max_retry_seconds` together, whichever runs out first; a 200
    reply whose body is not JSON is treated as transient (edges and proxies produce them) and retried within
    that budget before it becomes a `WattTimeResponseError`. `token_refresh_margin_seconds` renews the token
    that long before its 30-minute life ends, so a long backfill never waits on a 401; `login_limit` per
    `login_window_seconds` mirrors WattTime's 100 logins per 5 minutes. `verify` checks the server's TLS
    certificate, because the password and tokens cross that connection: pass an `ssl.SSLContext` to trust a
    private CA, and False only for a known test server.
    """

    def __init__(
        self,
        username: str,
        password: str,
        base_url: str = WATTTIME_BASE_URL,
        *,
        signal_type: str = DEFAULT_SIGNAL_TYPE,
        timeout_seconds: float = 30.0,
        max_attempts: int = 6,
        max_retry_seconds: float = 120.0,
        backoff_base_seconds: float = 1.0,
        backoff_max_seconds: float = 30.0,
        requests_per_second: float = 10.0,
        token_refresh_margin_seconds: float = 300,
        login_limit: int = 100,
        login_window_seconds: float = 300.0,
        max_concurrent_requests: int = MAX_CONCURRENT_REQUESTS,
        logger: logging.Logger | None = None,
        verify: bool | ssl.SSLContext = True,
    ) -> None:
        _require(bool(username) and bool(password), "WattTime username and password must both be set")
        _require(timeout_seconds > 0, "timeout_seconds must be > 0")
        _require(max_attempts >= 1, "max_attempts must be >= 1")
        _require(max_retry_seconds >= 0, "max_retry_seconds must be >= 0")
        _require(
            0 < backoff_base_seconds <= backoff_max_seconds, "need 0 < backoff_base_seconds <= backoff_max_seconds"
        )
        _require(requests_per_second > 0, "requests_per_second must be > 0")
        _require(
            0 <= token_refresh_margin_seconds < TOKEN_LIFETIME_SECONDS,
            f"token_refresh_margin_seconds must be in [0, {TOKEN_LIFETIME_SECONDS})",
        )
        _require(login_limit >= 1 and login_window_seconds > 0, "login_limit and login_window_seconds must be > 0")
        _require(max_concurrent_requests >= 1, "max_concurrent_requests must be >= 1")
        self._username = username
        self._credentials = httpx.BasicAuth(username, password)
        self._base_url = validate_base_url(base_url)
        self._signal_type = signal_type
        self._max_attempts = max_attempts
        self._max_retry_seconds = max_retry_seconds
        self._backoff = wait_random_exponential(multiplier=backoff_base_seconds, max=backoff_max_seconds)
        self._token_lifetime_used = TOKEN_LIFETIME_SECONDS - token_refresh_margin_seconds
        self._logger = logger or logging.getLogger(__name__)
        self._http = httpx.Client(
            base_url=self._base_url,
            timeout=timeout_seconds,
            headers=USER_AGENT,
            verify=verify,
        )
        self._request_limiter = _per_second_limiter(requests_per_second)
        self._login_limiter = _limiter(login_limit, Duration.SECOND * login_window_seconds)
        self._login_lock = threading.Lock()
        self._max_concurrent_requests = max_concurrent_requests
        self._in_flight = threading.BoundedSemaphore(max_concurrent_requests)
        self._token: str | None = None
        self._token_renew_at = 0.0

    def __repr__(self) -> str:
        return f"WattTimeClient(username={self._username!r}, base_url={self._base_url!r})"

    def __enter__(self) -> "WattTimeClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release pooled connections and the limiters' background leak threads."""
        self._http.close()
        self._request_limiter.close()
        self._login_limiter.close()

    # ----- public API -----

    def historical(self, region: str, start: datetime, end: datetime) -> list[HistoricalChunk]:
        """Fetch the half-open window [start, end) in chunks WattTime accepts, in chronological order.

        The chunks of a long window are fetched concurrently, because one at a time a year costs a dozen round
        trips end to end. A failed chunk fails the whole call with its own error, as a one-at-a-time fetch
        would: the other chunks send no further request, and the call returns only once none is in flight.
        """
        region = validate_region(region)
        start, end = require_utc(start, "start"), require_utc(end, "end")
        _require(end > start, f"end ({end.isoformat()}) must be after start ({start.isoformat()})")
        windows = list(_chunk_windows(start, end))
        with self._errors_logged():
            return self._fetch_all(windows, lambda window, abort: self._historical_chunk(region, *window, abort))

    def forecast(self, region: str, horizon_hours: int = 24) -> HistoricalChunk:
        """Fetch the latest forecast; its window is the span its points cover."""
        region = validate_region(region)
        _require(
            0 <= horizon_hours <= MAX_FORECAST_HORIZON_HOURS,
            f"horizon_hours must be in [0, {MAX_FORECAST_HORIZON_HOURS}], got {horizon_hours}",
        )
        call = _Call(FORECAST_PATH, region)
        params: dict[str, str | int] = {
            "region": region,
            "signal_type": self._signal_type,
            "horizon_hours": horizon_hours,
        }
        with self._errors_logged():
            return self._log_warnings(self._parse_signal(call, self._get_data(call, params), None))

    def my_access(self) -> dict[str, Any]:
        """List the regions, signals and models this account may read (and how far back each goes)."""
        call = _Call(MY_ACCESS_PATH)
        with self._errors_logged():
            reply = self._get_data(call, {})
            if not isinstance(reply.payload, dict):
                raise _response_error(call, reply.request_id, "expected a JSON object")
            return reply.payload

    def verify_credentials(self) -> None:
        """Log in now (unless a token is cached), so bad credentials surface before anything relies on them."""
        with self._errors_logged():
            self._valid_token()

    @contextmanager
    def _errors_logged(self) -> Iterator[None]:
        """Log every failure once, at the public boundary, with its x-request-id for WattTime support."""
        try:
            yield
        except WattTimeError as error:
            self._logger.error("%s: %s", type(error).__name__, error)
            raise

    # ----- data requests -----

    def _fetch_all(
        self,
        windows: list[tuple[datetime, datetime]],
        fetch: Callable[[tuple[datetime, datetime], threading.Event], HistoricalChunk],
    ) -> list[HistoricalChunk]:
        """Run `fetch` for every window on a few threads; results in window order, or the first failure raised.

        The first failure sets `abort`, which every later request, retry wait and login of this call checks, so
        a doomed call stops sending requests while the chunks already in flight finish.
        """
        abort = threading.Event()
        if len(windows) == 1:
            return [fetch(windows[0], abort)]
        failures: list[BaseException] = []

        def fetch_or_abort(window: tuple[datetime, datetime]) -> HistoricalChunk:
            try:
                return fetch(window, abort)
            except _Abandoned:
                raise
            except BaseException as failure:
                failures.append(failure)  # before `abort` is set, so failures[0] is the first one
                abort.set()
                raise

        pool = ThreadPoolExecutor(
            max_workers=min(self._max_concurrent_requests, len(windows)), thread_name_prefix="watttime-chunk"
        )
        futures: list[Future[HistoricalChunk]] = []
        try:
            futures.extend(pool.submit(fetch_or_abort, window) for window in windows)
            wait(futures, return_when=FIRST_EXCEPTION)
        finally:
            abort.set()  # stops what is left after a failure, or when the caller is interrupted while it waits
            pool.shutdown(wait=True, cancel_futures=True)
        if failures:
            raise failures[0]
        return [future.result() for future in futures]

    def _historical_chunk(
        self, region: str, start: datetime, end: datetime, abort: threading.Event | None = None
    ) -> HistoricalChunk:
        call = _Call(HISTORICAL_PATH, region, (start, end))
        params = {
            "region": region,
            "signal_type": self._signal_type,
            "start": start.isoformat(),
            "end": max(start, end - INCLUSIVE_END_TRIM).isoformat(),
            "include_imputed_marker": "true",
        }
        return self._log_warnings(self._parse_signal(call, self._get_data(call, params, abort), (start, end)))

    def _parse_signal(self, call: _Call, reply: _Reply, window: tuple[datetime, datetime] | None) -> HistoricalChunk:
        assert call.region is not None, "signal endpoints always name a region"
        return _parse_signal(call, reply, region=call.region, signal_type=self._signal_type, window=window)

    def _log_warnings(self, chunk: HistoricalChunk) -> HistoricalChunk:
        for warning in chunk.warnings:
            self._logger.warning(
                "WattTime warning for %s %s (x-request-id: %s): %s",
                chunk.region,
                chunk.signal_type,
                chunk.request_id,
                warning,
            )
        return chunk

    def _get_data(self, call: _Call, params: Mapping[str, str | int], abort: threading.Event | None = None) -> _Reply:
        """Authorised GET; a 401 (token revoked or expired early) earns exactly one re-login and retry."""
        token = self._valid_token(abort)
        reply = self._send(call, abort, params=params, headers=_bearer(token))
        if reply.response.status_code == 401:
            self._logger.warning(
                "%s: WattTime rejected the token (HTTP 401, x-request-id: %s); logging in again",
                call.describe(),
                reply.request_id,
            )
            reply = self._send(call, abort, params=params, headers=_bearer(self._renew_token(token, abort)))
            if reply.response.status_code == 401:
                raise WattTimeAuthError(
                    f"{call.describe()}: WattTime rejected a freshly issued token (HTTP 401)",
                    request_id=reply.request_id,
                )
        if reply.response.status_code != 200:
            raise _status_error(call, reply.response)
        return reply

    # ----- token handling -----

    def _valid_token(self, abort: threading.Event | None = None) -> str:
        """The cached token, or a new one; threads that find it stale together wait for a single login."""
        with self._login_lock:
            if self._token is None or time.monotonic() >= self._token_renew_at:
                self._login(abort)
            assert self._token is not None
            return self._token

    def _renew_token(self, stale: str, abort: threading.Event | None = None) -> str:
        """Log in again unless another thread already replaced the rejected token."""
        with self._login_lock:
            if self._token == stale:
                self._login(abort)
            assert self._token is not None
            return self._token

    def _login(self, abort: threading.Event | None) -> None:
        call = _Call(LOGIN_PATH)
        asked_at = time.monotonic()
        reply = self._send(call, abort, auth=self._credentials)
        status = reply.response.status_code
        if status in (401, 403):
            raise WattTimeAuthError(
                f"WattTime rejected the username/password for user {self._username!r} (HTTP {status} from "
                f"GET {LOGIN_PATH}); check the configured credentials",
                request_id=reply.request_id,
            )
        if status != 200:
            raise _status_error(call, reply.response)
        token = reply.payload.get("token") if isinstance(reply.payload, Mapping) else None
        if not isinstance(token, str) or not token:
            raise _response_error(call, reply.request_id, "the login reply has no token")
        self._token = token
        self._token_renew_at = asked_at + self._token_lifetime_used
        self._logger.info("Logged in to WattTime as %r", self._username)

    # ----- transport with limits and retries -----

    def _send(self, call: _Call, abort: threading.Event | None = None, **request: Any) -> _Reply:
        retrying = Retrying(
            retry=retry_if_exception_type(_TransientFailure),
            stop=stop_after_attempt(self._max_attempts) | stop_after_delay(self._max_retry_seconds),
            wait=self._wait_seconds,
            sleep=_backoff_sleep(abort),
            before_sleep=lambda state: self._log_retry(call, state),
            retry_error_callback=lambda state: self._give_up(call, state),
        )
        return retrying(self._attempt, call, request, abort)

    def _attempt(self, call: _Call, request: Mapping[str, Any], abort: threading.Event | None) -> _Reply:
        response = self._exchange(call, request, abort)
        request_id = _request_id(response)
        if response.status_code in RETRYABLE_STATUSES:
            raise _TransientFailure(
                f"HTTP {response.status_code}",
                request_id=request_id,
                retry_after=_retry_after_seconds(response.headers.get("retry-after")),
            )
        if response.status_code != 200:
            return _Reply(response, None)
        try:
            return _Reply(response, response.json())
        except ValueError as exc:  # the body is never quoted: a login reply carries the token
            raise _TransientFailure(
                "HTTP 200 with a body that is not valid JSON", request_id=request_id, malformed_body=True
            ) from exc

    def _exchange(self, call: _Call, request: Mapping[str, Any], abort: threading.Event | None) -> httpx.Response:
        """One request within the limits: an in-flight slot, then rate permits, then the request at once.

        The permits come last so that no request waits for a slot after its permit was counted: requests held
        back that way would later leave together, faster than the limit. The slot is free again before the body
        is decoded, so parsing one reply never holds back another request.
        """
        _check(abort)
        with self._in_flight:
            if call.path == LOGIN_PATH:
                self._login_limiter.try_acquire("login")
            self._request_limiter.try_acquire("request")
            _check(abort)  # the permits may have taken a while
            try:
                return self._http.get(call.path, **request)
            except TRANSIENT_TRANSPORT_ERRORS as exc:
                if _certificate_refused(exc):
                    raise WattTimeTLSError(f"{call.describe()}: TLS certificate not trusted ({exc})") from None
                raise _TransientFailure(f"{type(exc).__name__}: {exc}", request_id=None) from exc

    def _wait_seconds(self, state: RetryCallState) -> float:
        """Full-jitter exponential backoff, or the server's Retry-After, never past the retry budget."""
        failure = _failure_of(state)
        wanted = self._backoff(state) if failure.retry_after is None else failure.retry_after
        return max(0.0, min(wanted, self._max_retry_seconds - _elapsed(state)))

    def _log_retry(self, call: _Call, state: RetryCallState) -> None:
        failure = _failure_of(state)
        self._logger.warning(
            "%s: attempt %d of %d failed (%s, x-request-id: %s); retrying in %.2f s",
            call.describe(),
            state.attempt_number,
            self._max_attempts,
            failure.detail,
            failure.request_id,
            state.upcoming_sleep,
        )

    def _give_up(self, call: _Call, state: RetryCallState) -> NoReturn:
        failure = _failure_of(state)
        summary = (
            f"{call.describe()}: gave up after {state.attempt_number} attempt(s) in {_elapsed(state):.1f} s "
            f"(limits: {self._max_attempts} attempts, {self._max_retry_seconds:g} s); last error: {failure.detail}"
        )
        error: WattTimeError
        if failure.malformed_body:
            error = WattTimeResponseError(summary, request_id=failure.request_id, retryable=True)
        else:
            error = WattTimeUnavailableError(summary, request_id=failure.request_id)
        raise error from failure


def _backoff_sleep(abort: threading.Event | None) -> Callable[[float], None]:
    """Sleep between attempts, cut short when a failure elsewhere abandons the call."""
    if abort is None:
        return time.sleep

    def sleep(seconds: float) -> None:
        abort.wait(seconds)

    return sleep


def _check(abort: threading.Event | None) -> None:
    if abort is not None and abort.is_set():
        raise _Abandoned


def _certificate_refused(error: BaseException) -> bool:
    """Retrying cannot fix an untrusted certificate, so it is told apart from other connection failures."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _elapsed(state: RetryCallState) -> float:
    return time.monotonic() - state.start_time


def _failure_of(state: RetryCallState) -> _TransientFailure:
    assert state.outcome is not None
    failure = state.outcome.exception()
    assert isinstance(failure, _TransientFailure)
    return failure
