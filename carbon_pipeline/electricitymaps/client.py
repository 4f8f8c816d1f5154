"""Synchronous, thread-safe client for the Electricity Maps v3 carbon-intensity endpoints.

A plain class, so scripts and tests can use it without Dagster; `electricitymaps/resource.py` wraps it.
Free tokens read `/latest` and `/history` (the last 24 hours); `/past-range` and `/forecast` need a paid plan,
and `/past-range` takes at most 10 days of hourly data per call, so longer ranges are split here. Every reply
is validated whole (`replies`) and every failure is a typed error naming the zone and the range (`errors`).
"""

import logging
import ssl
from datetime import datetime
from pathlib import Path

from carbon_pipeline.electricitymaps.endpoints import (
    DEFAULT_REQUESTS_PER_SECOND,
    ELECTRICITYMAPS_BASE_URL,
    EMISSION_FACTOR_TYPES,
    FORECAST_HORIZON_HOURS,
    FORECAST_PATH,
    GRANULARITIES,
    HISTORY_PATH,
    LATEST_PATH,
    PAST_RANGE_CHUNKS,
    PAST_RANGE_PATH,
    Query,
    api_time,
    split_range,
    validate_choice,
    validate_zone,
)
from carbon_pipeline.electricitymaps.errors import ElectricityMapsResponseError
from carbon_pipeline.electricitymaps.replies import (
    IntensityForecast,
    IntensityPoint,
    parse_forecast,
    parse_point,
    parse_points,
    status_error,
)
from carbon_pipeline.electricitymaps.transport import REQUEST, Transport
from carbon_pipeline.rate_limits import account_budgets, spaced_rate
from carbon_pipeline.retry import RetryPolicy
from carbon_pipeline.watttime.endpoints import require, require_utc, validate_base_url

SERVICE = "Electricity Maps"


class ElectricityMapsClient:
    """Client for Electricity Maps v3: spaced requests, bounded retries, validated points, typed errors.

    `emission_factor_type` (lifecycle or direct) and `granularity` (hourly, 15_minutes, 5_minutes: plan
    dependent) apply to every call. The retry budget is `max_attempts` and `max_retry_seconds` together
    (`carbon_pipeline.retry`); `requests_per_second` spaces requests, shared by every client on the host
    using `limits_folder` with this token (the file is named by a hash of the token, never the token).
    """

    def __init__(
        self,
        api_token: str,
        base_url: str = ELECTRICITYMAPS_BASE_URL,
        *,
        emission_factor_type: str = "lifecycle",
        granularity: str = "hourly",
        timeout_seconds: float = 30.0,
        max_attempts: int = 6,
        max_retry_seconds: float = 120.0,
        backoff_base_seconds: float = 1.0,
        backoff_max_seconds: float = 30.0,
        requests_per_second: float = DEFAULT_REQUESTS_PER_SECOND,
        limits_folder: Path | None = None,
        logger: logging.Logger | None = None,
        verify: bool | ssl.SSLContext = True,
    ) -> None:
        require(bool(api_token), "the Electricity Maps API token must be set")
        require(timeout_seconds > 0, "timeout_seconds must be > 0")
        require(0 < backoff_base_seconds <= backoff_max_seconds, "need 0 < backoff_base_seconds <= backoff_max_seconds")
        require(requests_per_second > 0, "requests_per_second must be > 0")
        self._base_url = validate_base_url(base_url, SERVICE)
        self.emission_factor_type = validate_choice("emission_factor_type", emission_factor_type, EMISSION_FACTOR_TYPES)
        self.granularity = validate_choice("granularity", granularity, tuple(GRANULARITIES))
        self._transport = Transport(
            self._base_url,
            api_token,
            retry=RetryPolicy(max_attempts, max_retry_seconds, backoff_base_seconds, backoff_max_seconds),
            timeout_seconds=timeout_seconds,
            budgets=account_budgets(limits_folder, api_token, {REQUEST: spaced_rate(requests_per_second)}),
            logger=logger or logging.getLogger(__name__),
            verify=verify,
        )

    def __repr__(self) -> str:
        return f"ElectricityMapsClient(base_url={self._base_url!r}, granularity={self.granularity!r})"

    def __enter__(self) -> "ElectricityMapsClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._transport.close()

    def latest(self, zone: str) -> IntensityPoint:
        """The zone's most recent value (free plans included); usually estimated."""
        query = Query(LATEST_PATH, validate_zone(zone))
        body = self._get(query, {})
        return parse_point(body, query, self.emission_factor_type)

    def history(self, zone: str) -> list[IntensityPoint]:
        """The zone's last 24 hours (free plans included), oldest first; the newest hours are often estimated."""
        query = Query(HISTORY_PATH, validate_zone(zone))
        return parse_points(self._get(query, {}), "history", query, self.emission_factor_type)

    def past_range(self, zone: str, start: datetime, end: datetime) -> list[IntensityPoint]:
        """Every point in [start, end), oldest first, in as many /past-range calls as the per-call limit needs.

        Needs a paid plan: a free token gets `ElectricityMapsPlanError` naming the zone and range.
        """
        validate_zone(zone)
        start, end = require_utc(start, "start"), require_utc(end, "end")
        require(start < end, f"start {start.isoformat()} must be before end {end.isoformat()}")
        points: list[IntensityPoint] = []
        for window in split_range(start, end, PAST_RANGE_CHUNKS[self.granularity]):
            query = Query(PAST_RANGE_PATH, zone, window)
            params = {"start": api_time(window[0]), "end": api_time(window[1])}
            chunk = parse_points(self._get(query, params), "data", query, self.emission_factor_type)
            # Whether `end` is inclusive is not documented: a point at it belongs to the next window.
            points += [point for point in chunk if point.time < window[1]]
        return points

    def forecast(self, zone: str, horizon_hours: int) -> IntensityForecast:
        """The zone's newest forecast for the next `horizon_hours` (1 to 72), validated whole.

        Needs a paid plan: a free token gets `ElectricityMapsPlanError` naming the zone.
        """
        low, high = FORECAST_HORIZON_HOURS
        require(
            type(horizon_hours) is int and low <= horizon_hours <= high,
            f"horizon_hours {horizon_hours!r} is not a whole number from {low} to {high}",
        )
        query = Query(FORECAST_PATH, validate_zone(zone))
        body = self._get(query, {"horizonHours": str(horizon_hours)})
        return parse_forecast(body, query, self.emission_factor_type, GRANULARITIES[self.granularity])

    def _get(self, query: Query, params: dict[str, str]) -> object:
        shared = {
            "zone": query.zone,
            "emissionFactorType": self.emission_factor_type,
            "temporalGranularity": self.granularity,
        }
        response, body = self._transport.get_json(query, {**shared, **params})
        if response.status_code != 200:
            raise status_error(response, query)
        if not isinstance(body, dict):
            raise ElectricityMapsResponseError("the reply is not a JSON object", query=query)
        return body
