"""Synchronous, thread-safe client for the WattTime v3 API.

It is a plain class so that scripts and tests can use it without Dagster; `watttime/resource.py` wraps it.
Everything WattTime documents as a trap is handled once, here or in the modules it builds on: the 30-minute
token (here), the inclusive `start`/`end` bounds and the per-call window limits of `/v3/historical` (32 days)
and `/v3/forecast/historical` (24 h) (`chunks`), the request and login limits and transient 429/5xx replies
(`transport`), and error bodies that are sometimes JSON and sometimes CloudFront HTML (`replies`).
"""

import logging
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx

from carbon_pipeline.regions import validate_region
from carbon_pipeline.retry import RetryPolicy
from carbon_pipeline.watttime.chunks import Window, fetch_concurrently, inclusive_bounds, requested_windows
from carbon_pipeline.watttime.endpoints import (
    DEFAULT_SIGNAL_TYPE,
    FORECAST_HISTORICAL_PATH,
    FORECAST_HISTORY_CHUNK,
    FORECAST_PATH,
    HISTORICAL_PATH,
    LOGIN_PATH,
    MY_ACCESS_PATH,
    REGION_FROM_LOC_PATH,
    SIGNAL_INDEX_PATH,
    WATTTIME_BASE_URL,
    Call,
    require,
    require_coordinates,
    require_utc,
    validate_base_url,
)
from carbon_pipeline.watttime.errors import WattTimeAuthError, WattTimeError
from carbon_pipeline.watttime.forecasts import (
    Forecast,
    first_issues,
    forecast_params,
    parse_forecast,
    parse_historical_forecasts,
)
from carbon_pipeline.watttime.limits import account_limits
from carbon_pipeline.watttime.replies import (
    HistoricalChunk,
    RegionLocation,
    Reply,
    parse_region_location,
    parse_signal,
    response_error,
    status_error,
)
from carbon_pipeline.watttime.signal_index import SignalIndex, parse_signal_index
from carbon_pipeline.watttime.transport import Transport

# WattTime tokens live 30 minutes; the client tracks that on its own clock from the moment it asks for one.
TOKEN_LIFETIME_SECONDS = 30 * 60
# /v3/historical accepts at most 32 days; 30 leaves room and keeps a 31-day month at two calls.
MAX_CHUNK = timedelta(days=30)
# Requests one client keeps in flight, across all threads. WattTime's legacy docs capped connections at 10 per
# IP, and at 10 requests/s a few in flight already hide the round trips of a long backfill.
MAX_CONCURRENT_REQUESTS = 4
DEFAULT_FORECAST_HORIZON_HOURS = 24
_Signal = TypeVar("_Signal", HistoricalChunk, Forecast, SignalIndex)


class WattTimeClient:
    """Client for WattTime v3: cached token, client-side rate limits, bounded retries, typed errors.

    Safe to share between threads: the HTTP connection pool and the limiters are thread-safe, a lock around
    login means concurrent threads that find the token missing, stale or rejected trigger a single login, and
    at most `max_concurrent_requests` requests are in flight at once whichever threads send them.
    The retry budget is `max_attempts` and `max_retry_seconds` together, whichever runs out first, with
    full-jitter backoff from `backoff_base_seconds` up to `backoff_max_seconds` (`carbon_pipeline.retry`).
    `token_refresh_margin_seconds` renews the token that long before its 30-minute life ends, so a long
    backfill never waits on a 401; `login_limit` per `login_window_seconds` mirrors WattTime's 100 logins per
    5 minutes. Both budgets are this client's own unless `limits_folder` is given: then every client on the
    host using that folder and this username shares them (`carbon_pipeline.watttime.limits`). `verify` checks
    the server's TLS certificate, because the password and tokens cross that connection: pass an
    `ssl.SSLContext` to trust a private CA, and False only for a known test server.
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
        limits_folder: Path | None = None,
        logger: logging.Logger | None = None,
        verify: bool | ssl.SSLContext = True,
    ) -> None:
        require(bool(username) and bool(password), "WattTime username and password must both be set")
        require(timeout_seconds > 0, "timeout_seconds must be > 0")
        require(0 < backoff_base_seconds <= backoff_max_seconds, "need 0 < backoff_base_seconds <= backoff_max_seconds")
        require(requests_per_second > 0, "requests_per_second must be > 0")
        require(
            0 <= token_refresh_margin_seconds < TOKEN_LIFETIME_SECONDS,
            f"token_refresh_margin_seconds must be in [0, {TOKEN_LIFETIME_SECONDS})",
        )
        require(login_limit >= 1 and login_window_seconds > 0, "login_limit and login_window_seconds must be > 0")
        require(max_concurrent_requests >= 1, "max_concurrent_requests must be >= 1")
        self._username = username
        self._credentials = httpx.BasicAuth(username, password)
        self._base_url = validate_base_url(base_url)
        self._signal_type = signal_type
        self._token_lifetime_used = TOKEN_LIFETIME_SECONDS - token_refresh_margin_seconds
        self._logger = logger or logging.getLogger(__name__)
        self._transport = Transport(
            self._base_url,
            retry=RetryPolicy(max_attempts, max_retry_seconds, backoff_base_seconds, backoff_max_seconds),
            timeout_seconds=timeout_seconds,
            limits=account_limits(limits_folder, username, requests_per_second, login_limit, login_window_seconds),
            max_concurrent_requests=max_concurrent_requests,
            logger=self._logger,
            verify=verify,
        )
        self._login_lock = threading.Lock()
        self._max_concurrent = max_concurrent_requests
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
        self._transport.close()

    # ----- public API -----

    def historical(self, region: str, start: datetime, end: datetime) -> list[HistoricalChunk]:
        """Fetch the half-open window [start, end) of `point_time` in chunks WattTime accepts, in order.

        The chunks of a long window are fetched concurrently (`chunks.fetch_concurrently`); a failed chunk
        fails the whole call with its own error.
        """
        region = validate_region(region)
        windows = requested_windows(start, end, MAX_CHUNK)
        with self._errors_logged():
            return fetch_concurrently(
                windows, lambda window, abort: self._historical_chunk(region, window, abort), self._max_concurrent
            )

    def historical_updates(
        self, region: str, start: datetime, end: datetime, updated_since: datetime
    ) -> list[HistoricalChunk]:
        """The points of [start, end) whose value WattTime published or revised at or after `updated_since`.

        WattTime may revise a value at any time after publishing it; this asks `/v3/historical` with
        `updated_since` and gives each chunk's frame a `last_updated` column (UTC), checked on every point
        (`replies.last_updated_times`). Chunked and fetched exactly as `historical`.
        """
        region = validate_region(region)
        since = require_utc(updated_since, "updated_since")
        windows = requested_windows(start, end, MAX_CHUNK)
        with self._errors_logged():
            return fetch_concurrently(
                windows,
                lambda window, abort: self._historical_chunk(region, window, abort, updated_since=since),
                self._max_concurrent,
            )

    def forecast(
        self, region: str, horizon_hours: int = DEFAULT_FORECAST_HORIZON_HOURS, *, model: str | None = None
    ) -> Forecast:
        """The newest forecast WattTime issued, `horizon_hours` ahead (1-72); `model` pins a model version.

        Without `model` WattTime answers with its default, the newest model.
        """
        region = validate_region(region)
        call = Call(FORECAST_PATH, region)
        params = forecast_params(region, self._signal_type, horizon_hours, model)
        with self._errors_logged():
            reply = self._get_data(call, params)
            return self._log_warnings(parse_forecast(call, reply, region=region, signal_type=self._signal_type))

    def historical_forecasts(
        self,
        region: str,
        start: datetime,
        end: datetime,
        *,
        horizon_hours: int = DEFAULT_FORECAST_HORIZON_HOURS,
        model: str | None = None,
        issue_interval: timedelta | None = None,
    ) -> list[Forecast]:
        """Every forecast WattTime issued with `generated_at` in [start, end), in issue order.

        WattTime takes at most 24 h of `generated_at` per call, so a longer window is cut and fetched exactly as
        `historical` cuts and fetches, with the same non-overlapping inclusive bounds. With `issue_interval`
        (15 minutes for a pipeline storing one forecast per interval) only the first forecast issued in each
        interval is parsed and returned: a month of every 5-minute issue is 2.5 million points. A window
        outside WattTime's archive fails with `WattTimeArchiveError`.
        """
        region = validate_region(region)
        params = forecast_params(region, self._signal_type, horizon_hours, model)
        require(issue_interval is None or issue_interval > timedelta(0), "issue_interval must be positive")
        windows = requested_windows(start, end, FORECAST_HISTORY_CHUNK)

        def fetch(window: Window, abort: threading.Event) -> list[Forecast]:
            return self._historical_forecast_chunk(region, window, params, issue_interval, abort)

        with self._errors_logged():
            chunks = fetch_concurrently(windows, fetch, self._max_concurrent)
        forecasts = [forecast for chunk in chunks for forecast in chunk]
        if issue_interval is None:
            return forecasts
        # An interval that straddles two calls has a first issue in each; the earlier one is the interval's.
        return [forecasts[index] for index in first_issues([f.generated_at for f in forecasts], issue_interval)]

    def signal_index(self, region: str, signal_type: str | None = None) -> SignalIndex:
        """Where the current 5-minute period ranks (0 cleanest to 100 dirtiest) in `signal_type` (default: the
        client's) among the coming day; WattTime serves it for the current period only."""
        region, signal = validate_region(region), signal_type or self._signal_type
        call = Call(SIGNAL_INDEX_PATH, region)
        with self._errors_logged():
            reply = self._get_data(call, {"region": region, "signal_type": signal})
            return self._log_warnings(parse_signal_index(call, reply, region=region, signal_type=signal))

    def region_from_location(self, latitude: float, longitude: float, signal_type: str | None = None) -> RegionLocation:
        """The region serving a location (degrees), for `signal_type` (default: the client's signal type).

        Regions depend on the signal type, which is why WattTime asks for it. A location no region covers fails
        with `WattTimeNoCoverageError`.
        """
        location = require_coordinates(latitude, longitude)
        signal = signal_type or self._signal_type
        call = Call(REGION_FROM_LOC_PATH, location=location)
        params = {"latitude": str(location[0]), "longitude": str(location[1]), "signal_type": signal}
        with self._errors_logged():
            return parse_region_location(call, self._get_data(call, params), signal_type=signal)

    def my_access(self) -> dict[str, Any]:
        """List the regions, signals and models this account may read (and how far back each goes)."""
        call = Call(MY_ACCESS_PATH)
        with self._errors_logged():
            reply = self._get_data(call, {})
            if not isinstance(reply.payload, dict):
                raise response_error(call, reply.request_id, "expected a JSON object")
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

    def _historical_chunk(
        self,
        region: str,
        window: Window,
        abort: threading.Event | None = None,
        *,
        updated_since: datetime | None = None,
    ) -> HistoricalChunk:
        call = Call(HISTORICAL_PATH, region, window)
        start, end = inclusive_bounds(window)
        params = {
            "region": region,
            "signal_type": self._signal_type,
            "start": start,
            "end": end,
            "include_imputed_marker": "true",
        }
        if updated_since is not None:
            params["updated_since"] = updated_since.isoformat()
        reply = self._get_data(call, params, abort)
        chunk = parse_signal(
            call, reply, region=region, signal_type=self._signal_type, window=window, updated_since=updated_since
        )
        return self._log_warnings(chunk)

    def _historical_forecast_chunk(
        self,
        region: str,
        window: Window,
        params: Mapping[str, str | int],
        issue_interval: timedelta | None,
        abort: threading.Event,
    ) -> list[Forecast]:
        call = Call(FORECAST_HISTORICAL_PATH, region, window)
        start, end = inclusive_bounds(window)
        reply = self._get_data(call, {**params, "start": start, "end": end}, abort)
        forecasts = parse_historical_forecasts(
            call, reply, region=region, signal_type=self._signal_type, issue_interval=issue_interval
        )
        if forecasts:
            self._log_warnings(forecasts[0])  # one reply, one meta: its warnings are logged once
        return forecasts

    def _log_warnings(self, chunk: _Signal) -> _Signal:
        for warning in chunk.warnings:
            self._logger.warning(
                "WattTime warning for %s %s (x-request-id: %s): %s",
                chunk.region,
                chunk.signal_type,
                chunk.request_id,
                warning,
            )
        return chunk

    def _get_data(self, call: Call, params: Mapping[str, str | int], abort: threading.Event | None = None) -> Reply:
        """Authorised GET; a 401 (token revoked or expired early) earns exactly one re-login and retry."""
        token = self._valid_token(abort)
        reply = self._transport.send(call, abort, params=params, headers=_bearer(token))
        if reply.response.status_code == 401:
            self._logger.warning(
                "%s: WattTime rejected the token (HTTP 401, x-request-id: %s); logging in again",
                call.describe(),
                reply.request_id,
            )
            reply = self._transport.send(call, abort, params=params, headers=_bearer(self._renew_token(token, abort)))
            if reply.response.status_code == 401:
                raise WattTimeAuthError(
                    f"{call.describe()}: WattTime rejected a freshly issued token (HTTP 401)",
                    request_id=reply.request_id,
                )
        if reply.response.status_code != 200:
            raise status_error(call, reply.response)
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
        call = Call(LOGIN_PATH)
        asked_at = time.monotonic()
        reply = self._transport.send(call, abort, auth=self._credentials)
        status = reply.response.status_code
        if status in (401, 403):
            raise WattTimeAuthError(
                f"WattTime rejected the username/password for user {self._username!r} (HTTP {status} from "
                f"GET {LOGIN_PATH}); check the configured credentials",
                request_id=reply.request_id,
            )
        if status != 200:
            raise status_error(call, reply.response)
        token = reply.payload.get("token") if isinstance(reply.payload, Mapping) else None
        if not isinstance(token, str) or not token:
            raise response_error(call, reply.request_id, "the login reply has no token")
        self._token = token
        self._token_renew_at = asked_at + self._token_lifetime_used
        self._logger.info("Logged in to WattTime as %r", self._username)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
