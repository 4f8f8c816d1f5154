"""The Electricity Maps group of ``PipelineSettings``: zones, emission factor, what the plan serves.

With no zone (the default) the pipeline defines nothing for Electricity Maps, so deployments that never set
these variables are unchanged. ``PipelineSettings`` inherits these fields; only it reads the environment.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, Field, field_validator

from carbon_pipeline.electricitymaps.endpoints import (
    DEFAULT_REQUESTS_PER_SECOND,
    ELECTRICITYMAPS_BASE_URL,
    EMISSION_FACTOR_TYPES,
    FORECAST_HORIZON_HOURS,
    HISTORY_SPAN,
    validate_zone,
)
from carbon_pipeline.setting_errors import ConfigurationError, one_of

ELECTRICITYMAPS_API_TOKEN_VARIABLE = "ELECTRICITYMAPS_API_TOKEN"
ELECTRICITYMAPS_BASE_URL_VARIABLE = "ELECTRICITYMAPS_BASE_URL"
ZONES_VARIABLE = "CARBON_ELECTRICITYMAPS_ZONES"
HISTORY_HOURS_VARIABLE = "CARBON_ELECTRICITYMAPS_HISTORY_HOURS"
REQUESTS_PER_SECOND_VARIABLE = "ELECTRICITYMAPS_REQUESTS_PER_SECOND"
FORECAST_VARIABLE = "CARBON_ELECTRICITYMAPS_FORECAST"
FORECAST_HOURS_VARIABLE = "CARBON_ELECTRICITYMAPS_FORECAST_HOURS"
# Whether the plan serves /forecast cannot be asked of the API, so the plan's holder says so, as a yes or a no.
SWITCH_VALUES = dict.fromkeys(("true", "1", "yes", "on"), True) | dict.fromkeys(("false", "0", "no", "off"), False)
# The free tier serves the last 24 hours; a paid plan reaches years back (ten at most, here).
FREE_TIER_HOURS = int(HISTORY_SPAN.total_seconds() // 3600)
HISTORY_HOURS_RANGE = (1, 10 * 366 * 24)


class ElectricityMapsSettings(BaseModel):
    """Fields read from ``CARBON_ELECTRICITYMAPS_*`` and ``ELECTRICITYMAPS_BASE_URL`` (the token is an EnvVar)."""

    electricitymaps_zones: tuple[str, ...] = Field((), validation_alias=ZONES_VARIABLE)
    electricitymaps_emission_factor: str = Field("lifecycle", validation_alias="CARBON_ELECTRICITYMAPS_EMISSION_FACTOR")
    electricitymaps_history_hours: int = Field(FREE_TIER_HOURS, validation_alias=HISTORY_HOURS_VARIABLE)
    electricitymaps_base_url: str = Field(ELECTRICITYMAPS_BASE_URL, validation_alias=ELECTRICITYMAPS_BASE_URL_VARIABLE)
    electricitymaps_requests_per_second: float = Field(
        DEFAULT_REQUESTS_PER_SECOND, validation_alias=REQUESTS_PER_SECOND_VARIABLE
    )
    # Off by default: a free token is refused /forecast, so the forecast asset exists only when a plan serves it.
    electricitymaps_forecast: bool = Field(False, validation_alias=FORECAST_VARIABLE)
    electricitymaps_forecast_hours: int = Field(24, validation_alias=FORECAST_HOURS_VARIABLE)

    @field_validator("electricitymaps_zones", mode="before")
    @classmethod
    def _zones(cls, value: object) -> tuple[str, ...]:
        items = value.split(",") if isinstance(value, str) else list(value)  # type: ignore[call-overload]
        zones = [str(item).strip() for item in items if str(item).strip()]
        try:
            checked = [validate_zone(zone) for zone in zones]
        except ValueError as error:
            raise ConfigurationError(f"{ZONES_VARIABLE}: {error}") from None
        if len(set(checked)) != len(checked):
            raise ConfigurationError(f"{ZONES_VARIABLE}={value!r}: a zone is listed twice.")
        return tuple(checked)

    @field_validator("electricitymaps_emission_factor", mode="before")
    @classmethod
    def _emission_factor(cls, value: object) -> str:
        return one_of(
            "CARBON_ELECTRICITYMAPS_EMISSION_FACTOR",
            str(value),
            EMISSION_FACTOR_TYPES,
            "lifecycle (with upstream emissions) or direct (combustion only)",
        )

    @field_validator("electricitymaps_history_hours", mode="before")
    @classmethod
    def _history_hours(cls, value: object) -> int:
        meaning = f"the hours back the Electricity Maps plan serves ({FREE_TIER_HOURS} on the free tier)"
        return _whole_hours(HISTORY_HOURS_VARIABLE, value, HISTORY_HOURS_RANGE, meaning)

    @field_validator("electricitymaps_base_url", mode="before")
    @classmethod
    def _base_url(cls, value: object) -> str:
        return str(value) or ELECTRICITYMAPS_BASE_URL

    @field_validator("electricitymaps_requests_per_second", mode="before")
    @classmethod
    def _requests_per_second(cls, value: object) -> float:
        """No plan's limit is published, so the plan's holder sets it (0.0083 is the old free API's 30/h)."""
        raw = str(value).strip()
        try:
            rate = float(raw) if raw else DEFAULT_REQUESTS_PER_SECOND
        except ValueError:
            rate = math.nan
        if not 0 < rate <= 1000:
            raise ConfigurationError(
                f"{REQUESTS_PER_SECOND_VARIABLE}={raw!r}: expected requests a second, above 0 and at most 1000."
            )
        return rate

    @field_validator("electricitymaps_forecast", mode="before")
    @classmethod
    def _forecast(cls, value: object) -> bool:
        if isinstance(value, bool):
            return value
        raw = str(value).strip().lower()
        if raw not in SWITCH_VALUES:
            raise ConfigurationError(
                f"{FORECAST_VARIABLE}={value!r}: expected true when the Electricity Maps plan serves forecasts, "
                "else false (the default)."
            )
        return SWITCH_VALUES[raw]

    @field_validator("electricitymaps_forecast_hours", mode="before")
    @classmethod
    def _forecast_hours(cls, value: object) -> int:
        meaning = "the hours of Electricity Maps forecast stored per issue"
        return _whole_hours(FORECAST_HOURS_VARIABLE, value, FORECAST_HORIZON_HOURS, meaning)

    def electricitymaps_required(self) -> tuple[str, ...]:
        """The variables production needs for Electricity Maps: the token, once a zone is configured."""
        return (ELECTRICITYMAPS_API_TOKEN_VARIABLE,) if self.electricitymaps_zones else ()


def _whole_hours(variable: str, value: object, bounds: tuple[int, int], meaning: str) -> int:
    """A whole number of hours within ``bounds``; else the error naming the variable, what it means and the range."""
    raw, (low, high) = str(value).strip(), bounds
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ConfigurationError(f"{variable}={raw!r}: expected {meaning}, a whole number from {low} to {high}.")
    return int(raw)
