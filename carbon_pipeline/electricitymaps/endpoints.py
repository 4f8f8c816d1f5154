"""What the Electricity Maps v3 API is, as its docs describe it: where it lives, its paths, what a call names.

Facts and what is still unconfirmed are listed in the README ("Electricity Maps: what the client assumes").
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

ELECTRICITYMAPS_BASE_URL = "https://api.electricitymap.org/v3"
TOKEN_HEADER = "auth-token"

LATEST_PATH = "/carbon-intensity/latest"
HISTORY_PATH = "/carbon-intensity/history"
PAST_RANGE_PATH = "/carbon-intensity/past-range"
FORECAST_PATH = "/carbon-intensity/forecast"

EMISSION_FACTOR_TYPES = ("lifecycle", "direct")
GRANULARITIES = {"5_minutes": timedelta(minutes=5), "15_minutes": timedelta(minutes=15), "hourly": timedelta(hours=1)}
# /history covers the last 24 hours; /past-range takes at most 10 days of hourly data per call. The limit for
# finer granularities is not published: one day per call is assumed.
HISTORY_SPAN = timedelta(hours=24)
PAST_RANGE_CHUNKS = {"hourly": timedelta(days=10), "15_minutes": timedelta(days=1), "5_minutes": timedelta(days=1)}
# How far ahead /forecast is asked for, in whole hours: the simulator serves up to 72 (the real API's range is
# UNCONFIRMED, README "Electricity Maps: what the client assumes").
FORECAST_HORIZON_HOURS = (1, 72)
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# No limit is published for today's plans. The free API's predecessor (CO2 Signal) published 30 requests an
# hour and 1 a second: the client keeps to the second's figure by default; a free token (one zone, one call an
# hour) stays within the hour's. README, "Electricity Maps: what the client assumes".
DEFAULT_REQUESTS_PER_SECOND = 1.0
FREE_TIER_REQUESTS_PER_HOUR = 30
# Zone keys as /v3/zones lists them: a country code, then optional dash-separated parts (US-CAL-CISO).
ZONE_PATTERN = re.compile(r"[A-Z]{2}(-[A-Z0-9]+)*")


@dataclass(frozen=True)
class Query:
    """What a request was for, so every log line and error can name the zone and the time range."""

    path: str
    zone: str
    window: tuple[datetime, datetime] | None = None

    def describe(self) -> str:
        parts = [f"GET {self.path}", f"zone {self.zone}"]
        if self.window is not None:
            parts.append(f"range [{self.window[0].isoformat()}, {self.window[1].isoformat()})")
        return ", ".join(parts)


def validate_zone(zone: str) -> str:
    if not isinstance(zone, str) or not ZONE_PATTERN.fullmatch(zone):
        raise ValueError(f"zone {zone!r} is not an Electricity Maps zone key such as DE, FR or US-CAL-CISO")
    return zone


def validate_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} {value!r} is not one of {', '.join(choices)}")
    return value


def api_time(value: datetime) -> str:
    """The ISO 8601 form the API takes, in UTC with a Z."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def split_range(start: datetime, end: datetime, chunk: timedelta) -> list[tuple[datetime, datetime]]:
    """[start, end) cut into consecutive windows of at most `chunk`, so each fits one /past-range call."""
    windows = []
    while start < end:
        windows.append((start, min(start + chunk, end)))
        start = windows[-1][1]
    return windows
