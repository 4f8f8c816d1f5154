"""Typed failures of the Electricity Maps v3 API, each naming the zone and time range it was asked for.

Each class maps to a different operator action (fix the token, buy a plan, fix the zone list, wait), so
callers and Dagster retry policies can branch on the type or on `retryable` instead of parsing messages.
"""

from carbon_pipeline.electricitymaps.endpoints import Query


class ElectricityMapsError(Exception):
    """Base class, so one `except ElectricityMapsError` covers every Electricity Maps failure."""

    retryable: bool = False

    def __init__(self, message: str, *, query: Query, retryable: bool | None = None) -> None:
        super().__init__(f"Electricity Maps {query.describe()}: {message}")
        self.zone = query.zone
        self.window = query.window
        if retryable is not None:
            self.retryable = retryable


class ElectricityMapsAuthError(ElectricityMapsError):
    """The token was refused (HTTP 401): retrying cannot help until the configuration is fixed."""


class ElectricityMapsPlanError(ElectricityMapsError):
    """The token's plan does not cover the endpoint, zone or granularity (HTTP 403)."""


class ElectricityMapsUnknownZoneError(ElectricityMapsError):
    """Electricity Maps does not know the zone key we sent."""


class ElectricityMapsBadRequestError(ElectricityMapsError):
    """The query parameters were refused for a reason other than the zone."""


class ElectricityMapsRateLimitedError(ElectricityMapsError):
    """Still HTTP 429 when the retry budget ran out: the token's rate limit is too low for this load."""

    retryable = True


class ElectricityMapsUnavailableError(ElectricityMapsError):
    """Electricity Maps kept failing transiently (5xx, timeouts, resets) until the retry budget ran out."""

    retryable = True


class ElectricityMapsResponseError(ElectricityMapsError):
    """The reply could not be trusted: not JSON, unexpected shape, a null, non-finite or impossible value."""
