"""What WattTime's v3 API is, as its docs and SDK describe it: where it lives, its paths, and what a call names.

Shared by the client, reply parsing and account registration, so each states a path or a status once.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

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
MY_ACCESS_PATH = "/v3/my-access"
REGISTER_PATH = "/register"

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Call:
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


def request_id_of(response: httpx.Response) -> str | None:
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


def require(condition: bool, message: str) -> None:
    """Refuse an argument before any request is sent."""
    if not condition:
        raise ValueError(message)
