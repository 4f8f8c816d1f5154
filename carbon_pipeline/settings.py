"""Deployment settings read from the environment when the code location loads.

Everything that shapes the definitions themselves (which regions are partitions, where partitions
start, which deployment's resources are used) is read here once, so a bad value fails the load with
a message naming the variable instead of failing some run hours later. Secrets are only checked for
presence: their values are resolved by Dagster's ``EnvVar`` at launch and never pass through here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal, TypeVar

from carbon_pipeline.regions import parse_regions

Deployment = Literal["local", "prod"]
DEPLOYMENTS: tuple[Deployment, ...] = ("local", "prod")
T = TypeVar("T", bound=str)

DEFAULT_REGIONS = "CAISO_NORTH"
DEFAULT_PARTITIONS_START = "2025-01-01"
DEFAULT_SCHEDULE_DELAY_MINUTES = 5
DEFAULT_ALERT_AFTER_FAILURES = 3
DEFAULT_GAP_FILL_HOURS = 7 * 24
DEFAULT_GAP_FILL_MAX_RUNS = 2

# Settings production cannot run without. A missing one used to send the old service into a silent
# "standby" that reported itself healthy; here the code location refuses to load instead.
PRODUCTION_REQUIRED = (
    "WATTTIME_USERNAME",
    "WATTTIME_PASSWORD",
    "INFLUXDB_HOST",
    "INFLUXDB_TOKEN",
    "INFLUXDB_DATABASE",
)
# Template values people forget to replace: whole known words, <angle-bracketed> hints, your_... names.
PLACEHOLDER = re.compile(
    r"^(changeme|change[-_]me|placeholder|todo|tbd|x{3,}|none|null|secret|password|token)$|^<.*>$|^your[-_]",
    re.IGNORECASE,
)


class ConfigurationError(ValueError):
    """A setting is missing or malformed; the message names the variable and what is expected."""


@dataclass(frozen=True)
class PipelineSettings:
    """The load-time settings of one deployment."""

    deployment: Deployment
    regions: tuple[str, ...]
    partitions_start: datetime
    schedule_delay_minutes: int
    alert_after_failures: int = DEFAULT_ALERT_AFTER_FAILURES
    gap_fill_hours: int = DEFAULT_GAP_FILL_HOURS
    gap_fill_max_runs: int = DEFAULT_GAP_FILL_MAX_RUNS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PipelineSettings:
        env = os.environ if environ is None else environ
        deployment = _deployment(env)
        if deployment == "prod":
            require_production_settings(env)
        return cls(
            deployment=deployment,
            regions=_regions(env),
            partitions_start=_partitions_start(env),
            schedule_delay_minutes=_whole_number(
                env,
                "CARBON_SCHEDULE_DELAY_MINUTES",
                DEFAULT_SCHEDULE_DELAY_MINUTES,
                0,
                14,
                "whole minutes after each interval closes",
            ),
            alert_after_failures=_whole_number(
                env,
                "CARBON_ALERT_AFTER_FAILURES",
                DEFAULT_ALERT_AFTER_FAILURES,
                1,
                100,
                "consecutive failed runs of a region before an alert",
            ),
            gap_fill_hours=_whole_number(
                env,
                "CARBON_GAP_FILL_HOURS",
                DEFAULT_GAP_FILL_HOURS,
                1,
                24 * 366,
                "hours searched for missing intervals",
            ),
            gap_fill_max_runs=_whole_number(
                env,
                "CARBON_GAP_FILL_MAX_RUNS",
                DEFAULT_GAP_FILL_MAX_RUNS,
                1,
                20,
                "gap-filling runs queued or running at once",
            ),
        )


def is_placeholder(value: str) -> bool:
    """True for empty values and the template values people forget to replace."""
    stripped = value.strip()
    return not stripped or PLACEHOLDER.search(stripped) is not None


def require_production_settings(env: Mapping[str, str]) -> None:
    """Fail the load when any production setting is missing or still a placeholder (values never echoed)."""
    bad = [name for name in PRODUCTION_REQUIRED if is_placeholder(env.get(name, ""))]
    if bad:
        raise ConfigurationError(
            "DAGSTER_DEPLOYMENT=prod needs these environment variables set to real values "
            f"(missing, empty or a placeholder): {', '.join(bad)}. See .env.example and the README."
        )


def one_of(variable: str, value: str, choices: tuple[T, ...], expected: str) -> T:
    """The choice equal to ``value``, typed as the choices are; else an error naming the variable."""
    for choice in choices:
        if value == choice:
            return choice
    raise ConfigurationError(f"{variable}={value!r}: expected {expected}.")


def _deployment(env: Mapping[str, str]) -> Deployment:
    value = env.get("DAGSTER_DEPLOYMENT", "local").strip() or "local"
    return one_of("DAGSTER_DEPLOYMENT", value, DEPLOYMENTS, " or ".join(DEPLOYMENTS))


def _regions(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env.get("CARBON_REGIONS", DEFAULT_REGIONS)
    try:
        return parse_regions(raw)
    except ValueError as error:
        raise ConfigurationError(f"CARBON_REGIONS: {error}") from error


def _partitions_start(env: Mapping[str, str]) -> datetime:
    raw = env.get("CARBON_PARTITIONS_START", DEFAULT_PARTITIONS_START).strip()
    try:
        day = date.fromisoformat(raw)
    except ValueError as error:
        raise ConfigurationError(
            f"CARBON_PARTITIONS_START={raw!r} is not a date; expected YYYY-MM-DD (UTC), e.g. 2025-01-01."
        ) from error
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    if start > datetime.now(UTC):
        raise ConfigurationError(f"CARBON_PARTITIONS_START={raw!r} is in the future.")
    return start


def _whole_number(env: Mapping[str, str], variable: str, default: int, low: int, high: int, meaning: str) -> int:
    raw = env.get(variable, str(default)).strip()
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ConfigurationError(f"{variable}={raw!r}: expected {meaning}, a whole number from {low} to {high}.")
    return int(raw)
