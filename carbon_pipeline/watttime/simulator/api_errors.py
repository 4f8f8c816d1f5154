"""The error replies of the simulated API, in the shapes the real one uses.

Data endpoints answer `{"error", "message", "docs"}`; schema violations get FastAPI's 422 `{"detail": [...]}`.
Endpoints raise `ApiError` and the handler turns it into the reply, so no endpoint handles reply plumbing.
"""

from __future__ import annotations

from typing import Any

from carbon_pipeline.loopback_http import ApiError

DOCS_URL = "https://docs.watttime.org/"
INVALID_SCOPE_MESSAGE = (
    "Invalid scope. You do not have sufficient access to this resource. See https://api.watttime.org/plans/ "
    "for more information or email contact@watttime.org for pricing. "
    "Please note that all users are allowed free access to CAISO_NORTH."
)
NO_FORECAST_ARCHIVE_MESSAGE = "No historical forecast data is available for the requested time range"


def error(status: int, title: str, message: str) -> ApiError:
    return ApiError(status, {"error": title, "message": message, "docs": DOCS_URL})


def invalid_query(message: str) -> ApiError:
    return error(400, "INVALID_QUERY_PARAMS", message)


def detail(*loc: str, msg: str, error_type: str) -> dict[str, Any]:
    """One item of FastAPI's 422 `detail` list, the shape the real API uses for schema violations."""
    return {"loc": list(loc), "msg": msg, "type": error_type}


def missing(location: str, name: str) -> dict[str, Any]:
    return detail(location, name, msg="field required", error_type="value_error.missing")


def unprocessable(*details: dict[str, Any]) -> ApiError:
    return ApiError(422, {"detail": list(details)})


def unauthorized() -> ApiError:
    return error(401, "Unauthorized", "Missing, invalid or expired token; log in again")


def invalid_scope() -> ApiError:
    return error(403, "INVALID_SCOPE", INVALID_SCOPE_MESSAGE)


def too_many_requests() -> ApiError:
    return error(429, "Too Many Requests", "Rate limit exceeded")


def outside_forecast_archive() -> ApiError:
    return error(404, "NOT_FOUND", NO_FORECAST_ARCHIVE_MESSAGE)
