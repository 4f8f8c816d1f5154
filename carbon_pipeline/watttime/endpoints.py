"""What WattTime's v3 API is, as its docs and SDK describe it: where it lives, its paths, and what a call names.

Shared by the client, reply parsing and account registration, so each states a path or a status once.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

from carbon_pipeline import __version__

WATTTIME_BASE_URL = "https://api.watttime.org"
# What WattTime grants every new account, per its SDK README and its "Invalid scope" message.
FREE_PLAN_REGION = "CAISO_NORTH"
USER_AGENT = {"User-Agent": f"carbon-pipeline/{__version__}"}
DEFAULT_SIGNAL_TYPE = "co2_moer"

LOGIN_PATH = "/login"
HISTORICAL_PATH = "/v3/historical"
FORECAST_PATH = "/v3/forecast"
FORECAST_HISTORICAL_PATH = "/v3/forecast/historical"
FORECAST_PATHS = frozenset({FORECAST_PATH, FORECAST_HISTORICAL_PATH})
MY_ACCESS_PATH = "/v3/my-access"
REGION_FROM_LOC_PATH = "/v3/region-from-loc"
SIGNAL_INDEX_PATH = "/v3/signal-index"
REGISTER_PATH = "/register"

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
SIGNAL_TYPES = ("co2_moer", "co2_aoer", "health_damage")
# WattTime accepts 0 (a single nowcast point) to 72; a forecast worth storing looks at least an hour ahead.
FORECAST_HORIZON_HOURS = (1, 72)
# /v3/forecast/historical takes at most 24 h of generated_at per call; forecasts are issued every 5 minutes.
FORECAST_HISTORY_CHUNK = timedelta(hours=24)
FORECAST_ISSUE_PERIOD = timedelta(minutes=5)


@dataclass(frozen=True)
class Call:
    """What a request was for, so every log line and error can name it."""

    path: str
    region: str | None = None
    window: tuple[datetime, datetime] | None = None
    method: str = "GET"
    location: tuple[float, float] | None = None  # (latitude, longitude) of /v3/region-from-loc

    def describe(self) -> str:
        parts = [f"{self.method} {self.path}"]
        if self.region is not None:
            parts.append(f"region {self.region}")
        if self.location is not None:
            parts.append(f"latitude {self.location[0]:g}, longitude {self.location[1]:g}")
        if self.window is not None:
            parts.append(f"window [{self.window[0].isoformat()}, {self.window[1].isoformat()})")
        return ", ".join(parts)


def request_id_of(response: httpx.Response) -> str | None:
    """WattTime support asks for this header's value when investigating a failure."""
    value: str | None = response.headers.get("x-request-id")
    return value


def validate_base_url(url: str, service: str = "WattTime") -> str:
    """Accept only http(s) URLs with a host; credentials embedded in a URL would end up in logs.

    `service` names the API in the messages; Electricity Maps' client checks its base URL here too.
    """
    if "@" in url:  # checked first so that no message below can echo a password
        raise ValueError(f"{service} base URL must not embed credentials (user:password@host)")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"{service} base URL {url!r} is not a valid URL: {exc}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host or parsed.query or parsed.fragment:
        raise ValueError(f"{service} base URL {url!r} must be an http:// or https:// URL with a host and no query")
    return url.rstrip("/")


def require_utc(value: datetime, name: str) -> datetime:
    """WattTime v3 rejects zone-less timestamps, and guessing a zone silently shifts data by hours."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def require(condition: bool, message: str) -> None:
    """Refuse an argument before any request is sent."""
    if not condition:
        raise ValueError(message)


def require_horizon_hours(hours: int) -> int:
    """A forecast horizon the pipeline asks for: whole hours within `FORECAST_HORIZON_HOURS`."""
    low, high = FORECAST_HORIZON_HOURS
    if isinstance(hours, bool) or not isinstance(hours, int) or not low <= hours <= high:
        raise ValueError(f"horizon_hours must be a whole number of hours from {low} to {high}, got {hours!r}")
    return hours


def require_coordinates(latitude: float, longitude: float) -> tuple[float, float]:
    """A point on Earth, in degrees; anything else would only earn a 404 or 422 from WattTime."""
    for name, value, limit in (("latitude", latitude, 90), ("longitude", longitude, 180)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not -limit <= value <= limit:
            raise ValueError(f"{name} must be a number of degrees from -{limit} to {limit}, got {value!r}")
    return float(latitude), float(longitude)
