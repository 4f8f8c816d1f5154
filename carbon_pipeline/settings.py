"""Every environment variable the package reads, read and checked here, once, when definitions are built.

Everything that shapes the definitions (which regions are partitions, where partitions start, which
deployment's resources are used and how they are wired) is a field of ``PipelineSettings``, so a bad
value fails the code location's load with a message naming the variable instead of failing some run
hours later. Secrets are only checked for presence: their values are resolved by Dagster's
``EnvVar`` at launch, never pass through here and are never held by a settings object.

``PipelineSettings.from_env`` reads a given mapping, or the process environment when given none;
nothing reads the environment at import.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from carbon_pipeline.notifier import DEFAULT_UI_URL, is_http_url
from carbon_pipeline.regions import parse_regions
from carbon_pipeline.setting_errors import ConfigurationError, one_of
from carbon_pipeline.settings_electricitymaps import (
    ELECTRICITYMAPS_API_TOKEN_VARIABLE as ELECTRICITYMAPS_API_TOKEN_VARIABLE,
)
from carbon_pipeline.settings_electricitymaps import (
    FORECAST_HOURS_VARIABLE,
    ZONES_VARIABLE,
    ElectricityMapsSettings,
)
from carbon_pipeline.sinks.influxdb import WriteApi
from carbon_pipeline.watttime.endpoints import (
    DEFAULT_SIGNAL_TYPE,
    FORECAST_HORIZON_HOURS,
    SIGNAL_TYPES,
    WATTTIME_BASE_URL,
)

Deployment = Literal["local", "prod"]
DEPLOYMENTS: tuple[Deployment, ...] = ("local", "prod")

DEFAULT_REGIONS = ("CAISO_NORTH",)
# The demo's Electricity Maps zone, shown beside CAISO_NORTH: the simulator serves it on every plan.
DEMO_ZONE = "DE"
# Local: a rolling four weeks, enough to explore without thousands of partitions that stay "missing".
# Production: a fixed date, so the history Dagster tracks (and the gap filler may refill) never shrinks.
DEFAULT_PARTITIONS_START: dict[Deployment, str] = {"local": "28d", "prod": "2025-01-01"}
ROLLING_WINDOW = re.compile(r"(?P<days>[0-9]+)d")
ROLLING_WINDOW_DAYS = (1, 3660)
DEFAULT_DAGSTER_HOME = ".dagster_home"
WATTTIME_USERNAME_VARIABLE = "WATTTIME_USERNAME"
WATTTIME_PASSWORD_VARIABLE = "WATTTIME_PASSWORD"
WATTTIME_BASE_URL_VARIABLE = "WATTTIME_BASE_URL"
# The standalone simulator's account; names of their own, so that starting it never takes a real password.
SIMULATOR_USERNAME_VARIABLE = "WATTTIME_SIMULATOR_USERNAME"
SIMULATOR_PASSWORD_VARIABLE = "WATTTIME_SIMULATOR_PASSWORD"
# (lowest, highest, what the number means) of each whole-number setting, for its error message.
WHOLE_NUMBERS = {
    "schedule_delay_minutes": (0, 14, "whole minutes after each interval closes"),
    "alert_after_failures": (1, 100, "consecutive failed runs of a region before an alert"),
    "gap_fill_hours": (1, 24 * 366, "hours searched for missing intervals"),
    "gap_fill_max_runs": (1, 20, "gap-filling runs queued or running at once"),
    "stalled_run_seconds": (10, 24 * 3600, "seconds a running run may record nothing before it counts as dead"),
    "refused_retry_minutes": (1, 7 * 24 * 60, "minutes a refused interval waits before it is requested again"),
    # Under 5: the issue interval's first forecast (WattTime issues every 5 minutes) must still be the newest.
    "forecast_delay_minutes": (0, 4, "whole minutes after each interval starts before its forecast is fetched"),
    # WattTime serves the index of the current period only: the run must start well inside its interval.
    "index_delay_minutes": (0, 10, "whole minutes after each interval starts before its signal index is fetched"),
    "forecast_horizon_hours": (*FORECAST_HORIZON_HOURS, "hours of WattTime forecast stored per issue"),
    # WattTime's /v3/historical reaches back 32 days per request; 30 keeps the sweep to one request per region.
    "revision_days": (1, 30, "days back the revision sweep asks WattTime for revised values"),
}
DEFAULT_WINDOW_HOURS = (1, 2, 4)
# A window must fit in the shortest forecast this setting allows: 1 hour.
WINDOW_HOURS_RANGE = (1, FORECAST_HORIZON_HOURS[1])

# Settings production cannot run without. A missing one used to send the old service into a silent
# "standby" that reported itself healthy; here the code location refuses to load instead.
PRODUCTION_REQUIRED = (
    WATTTIME_USERNAME_VARIABLE,
    WATTTIME_PASSWORD_VARIABLE,
    "INFLUXDB_HOST",
    "INFLUXDB_TOKEN",
    "INFLUXDB_DATABASE",
)
# Template values people forget to replace: whole known words, <angle-bracketed> hints, your_... names.
PLACEHOLDER = re.compile(
    r"^(changeme|change[-_]me|placeholder|todo|tbd|x{3,}|none|null|secret|password|token)$|^<.*>$|^your[-_]",
    re.IGNORECASE,
)


def _default_partitions_start(fields: dict[str, Any]) -> Any:
    """The deployment's default, as if its variable were set to it (it is parsed like one)."""
    return DEFAULT_PARTITIONS_START[fields.get("deployment", "local")]


class PipelineSettings(ElectricityMapsSettings):
    """The load-time settings of one deployment; each field is read from the variable its alias names.

    Tests and tools build one directly by field name; ``from_env`` reads one by variable name.
    """

    model_config = ConfigDict(
        frozen=True, extra="ignore", validate_default=True, validate_by_name=True, validate_by_alias=True
    )

    deployment: Deployment = Field("local", validation_alias="DAGSTER_DEPLOYMENT")
    regions: tuple[str, ...] = Field(DEFAULT_REGIONS, validation_alias="CARBON_REGIONS")
    partitions_start: datetime = Field(
        default_factory=_default_partitions_start, validation_alias="CARBON_PARTITIONS_START"
    )
    schedule_delay_minutes: int = Field(5, validation_alias="CARBON_SCHEDULE_DELAY_MINUTES")
    alert_after_failures: int = Field(3, validation_alias="CARBON_ALERT_AFTER_FAILURES")
    gap_fill_hours: int = Field(7 * 24, validation_alias="CARBON_GAP_FILL_HOURS")
    gap_fill_max_runs: int = Field(2, validation_alias="CARBON_GAP_FILL_MAX_RUNS")
    # A live run records an event at least every few minutes (its longest silence is a fetch or a write
    # under the retry policy's budget); one silent for half an hour has lost its worker.
    stalled_run_seconds: int = Field(1800, validation_alias="CARBON_STALLED_RUN_SECONDS")
    # Rejected data rarely heals within minutes (WattTime republishes within hours); each retry costs a call.
    refused_retry_minutes: int = Field(360, validation_alias="CARBON_REFUSED_RETRY_MINUTES")
    forecast_delay_minutes: int = Field(2, validation_alias="CARBON_FORECAST_DELAY_MINUTES")
    forecast_horizon_hours: int = Field(24, validation_alias="CARBON_FORECAST_HORIZON_HOURS")
    index_delay_minutes: int = Field(1, validation_alias="CARBON_INDEX_DELAY_MINUTES")
    # What /v3/signal-index is asked for; WattTime does not document the parameter (README, "Signal index").
    index_signal_type: str = Field(DEFAULT_SIGNAL_TYPE, validation_alias="CARBON_INDEX_SIGNAL_TYPE")
    window_hours: tuple[int, ...] = Field(DEFAULT_WINDOW_HOURS, validation_alias="CARBON_WINDOW_HOURS")
    revision_days: int = Field(7, validation_alias="CARBON_REVISION_DAYS")
    ui_url: str = Field(DEFAULT_UI_URL, validation_alias="CARBON_UI_URL")
    # Presence only: the URL is a secret (Slack's embed a token), resolved by EnvVar when a sensor runs.
    alert_webhook: bool = Field(False, validation_alias="ALERT_WEBHOOK_URL")
    dagster_home: Path = Field(Path(DEFAULT_DAGSTER_HOME), validation_alias="DAGSTER_HOME")
    line_protocol_dir: Path | None = Field(None, validation_alias="CARBON_LINE_PROTOCOL_DIR")
    watttime_base_url: str = Field(WATTTIME_BASE_URL, validation_alias=WATTTIME_BASE_URL_VARIABLE)
    influxdb_host: str = Field("", validation_alias="INFLUXDB_HOST")
    influxdb_database: str = Field("", validation_alias="INFLUXDB_DATABASE")
    influxdb_write_api: WriteApi = Field("v3", validation_alias="INFLUXDB_WRITE_API")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, now: datetime | None = None) -> PipelineSettings:
        """The settings in ``environ`` (else the process environment); ``now`` places a rolling window."""
        env = os.environ if environ is None else environ
        context = {"now": now or datetime.now(UTC)}
        try:
            settings = cls.model_validate(env, by_alias=True, by_name=False, context=context)
        except ValidationError as error:
            problems = _problems(error)
        else:
            if settings.deployment == "prod":
                require_production_settings(env, settings.electricitymaps_required())
            return settings
        # Raised outside the handler so the pydantic error, which holds the raw values, is not chained to it.
        raise ConfigurationError(problems)

    @classmethod
    def for_demo(cls, now: datetime | None = None) -> PipelineSettings:
        """The local deployment whatever the shell says (the demo never touches real services); the rest as set,
        with an Electricity Maps zone unless the shell names its own."""
        return cls.from_env({ZONES_VARIABLE: DEMO_ZONE, **os.environ, "DAGSTER_DEPLOYMENT": "local"}, now)

    @property
    def line_protocol_directory(self) -> Path:
        """``CARBON_LINE_PROTOCOL_DIR``, else ``$DAGSTER_HOME/line_protocol``: next to the instance recording runs."""
        return self.line_protocol_dir or self.dagster_home / "line_protocol"

    @property
    def watttime_limits_directory(self) -> Path:
        """``$DAGSTER_HOME/watttime_limits``: every run process of this instance shares WattTime's limits there."""
        return self.dagster_home / "watttime_limits"

    @classmethod
    def variable(cls, field_name: str) -> str:
        """The environment variable a field is read from."""
        alias = cls.model_fields[field_name].validation_alias
        assert isinstance(alias, str)
        return alias

    @field_validator("deployment", mode="before")
    @classmethod
    def _deployment(cls, value: object) -> Deployment:
        text = str(value).strip() or "local"
        return one_of("DAGSTER_DEPLOYMENT", text, DEPLOYMENTS, " or ".join(DEPLOYMENTS))

    @field_validator("regions", mode="before")
    @classmethod
    def _regions(cls, value: object) -> tuple[str, ...]:
        csv = value if isinstance(value, str) else ",".join(value)  # type: ignore[arg-type]
        try:
            return parse_regions(csv)
        except ValueError as error:
            raise ConfigurationError(f"CARBON_REGIONS: {error}") from None

    @field_validator("partitions_start", mode="before")
    @classmethod
    def _partitions_start(cls, value: object, info: ValidationInfo) -> datetime:
        now = (info.context or {}).get("now") or datetime.now(UTC)
        if isinstance(value, datetime):
            return value.astimezone(UTC)
        return parse_partitions_start(str(value), now)

    @field_validator(*WHOLE_NUMBERS, mode="before")
    @classmethod
    def _whole_number(cls, value: object, info: ValidationInfo) -> int:
        assert info.field_name is not None
        low, high, meaning = WHOLE_NUMBERS[info.field_name]
        raw = str(value).strip()
        if not raw.isdigit() or not low <= int(raw) <= high:
            raise ConfigurationError(
                f"{cls.variable(info.field_name)}={raw!r}: expected {meaning}, a whole number from {low} to {high}."
            )
        return int(raw)

    @field_validator("window_hours", mode="before")
    @classmethod
    def _window_hours(cls, value: object) -> tuple[int, ...]:
        raw = value if isinstance(value, str) else ",".join(str(hours) for hours in value)  # type: ignore[attr-defined]
        items = [item.strip() for item in raw.split(",") if item.strip()]
        low, high = WINDOW_HOURS_RANGE
        if not items or any(not item.isdigit() or not low <= int(item) <= high for item in items):
            raise ConfigurationError(
                f"CARBON_WINDOW_HOURS={raw!r}: expected comma-separated window lengths, whole hours from {low} "
                f"to {high}, such as 1,2,4."
            )
        return tuple(sorted({int(item) for item in items}))

    @model_validator(mode="after")
    def _windows_fit_forecast(self) -> PipelineSettings:
        """Every window length must fit in each forecast it is looked for in: WattTime's, and Electricity Maps'."""
        horizons = {"CARBON_FORECAST_HORIZON_HOURS": self.forecast_horizon_hours}
        if self.electricitymaps_zones and self.electricitymaps_forecast:
            horizons[FORECAST_HOURS_VARIABLE] = self.electricitymaps_forecast_hours
        for variable, horizon in horizons.items():
            too_long = [hours for hours in self.window_hours if hours > horizon]
            if too_long:
                raise ConfigurationError(
                    f"CARBON_WINDOW_HOURS: window(s) of {', '.join(map(str, too_long))} h do not fit in the "
                    f"{horizon} h forecast ({variable})."
                )
        return self

    @field_validator("ui_url", "watttime_base_url", mode="before")
    @classmethod
    def _empty_means_default(cls, value: object, info: ValidationInfo) -> object:
        assert info.field_name is not None
        return value or cls.model_fields[info.field_name].default

    @field_validator("alert_webhook", mode="before")
    @classmethod
    def _webhook_present(cls, value: object) -> bool:
        if isinstance(value, bool):
            return value
        url = str(value).strip()
        if url and not is_http_url(url):
            raise ConfigurationError(
                "ALERT_WEBHOOK_URL: expected an http:// or https:// URL (value not shown: it is a secret)."
            )
        return bool(url)

    @field_validator("dagster_home", "line_protocol_dir", mode="before")
    @classmethod
    def _resolved_directory(cls, value: object, info: ValidationInfo) -> Path | None:
        """Relative directories are taken from where the code location loads, as Dagster takes DAGSTER_HOME."""
        assert info.field_name is not None
        directory = value or cls.model_fields[info.field_name].default
        return None if directory is None else Path(str(directory)).resolve()

    @field_validator("index_signal_type", mode="before")
    @classmethod
    def _index_signal_type(cls, value: object) -> str:
        return one_of("CARBON_INDEX_SIGNAL_TYPE", str(value), SIGNAL_TYPES, " or ".join(SIGNAL_TYPES))

    @field_validator("influxdb_write_api", mode="before")
    @classmethod
    def _write_api(cls, value: object) -> WriteApi:
        return one_of(
            "INFLUXDB_WRITE_API",
            str(value),
            get_args(WriteApi),
            "v3 (InfluxDB 3, /api/v3/write_lp) or v2 (InfluxDB 2.x, Cloud, 1.8+)",
        )


def parse_partitions_start(raw: str, now: datetime) -> datetime:
    """A UTC date, or ``<N>d``: the UTC midnight N days before ``now``'s, a window that rolls forward daily.

    A rolling start is floored to a UTC day so every load on the same day agrees on the first key.
    """
    text = raw.strip()
    if window := ROLLING_WINDOW.fullmatch(text):
        return _rolling_start(raw, int(window["days"]), now)
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ConfigurationError(
            f"CARBON_PARTITIONS_START={raw!r} is neither a date nor a number of days; expected YYYY-MM-DD (UTC), "
            "e.g. 2025-01-01, or days before today, e.g. 28d."
        ) from None
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    if start > now:
        raise ConfigurationError(f"CARBON_PARTITIONS_START={raw!r} is in the future.")
    return start


def _rolling_start(raw: str, days: int, now: datetime) -> datetime:
    low, high = ROLLING_WINDOW_DAYS
    if not low <= days <= high:
        raise ConfigurationError(
            f"CARBON_PARTITIONS_START={raw!r}: expected a rolling window of {low} to {high} days, e.g. 28d."
        )
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days)


def is_placeholder(value: str) -> bool:
    """True for empty values and the template values people forget to replace."""
    stripped = value.strip()
    return not stripped or PLACEHOLDER.search(stripped) is not None


def require_production_settings(env: Mapping[str, str], also: tuple[str, ...] = ()) -> None:
    """Fail the load when any production setting (``also`` included) is missing or still a placeholder
    (values never echoed)."""
    bad = [name for name in (*PRODUCTION_REQUIRED, *also) if is_placeholder(env.get(name, ""))]
    if bad:
        raise ConfigurationError(
            "DAGSTER_DEPLOYMENT=prod needs these environment variables set to real values "
            f"(missing, empty or a placeholder): {', '.join(bad)}. See .env.example and the README."
        )


def watttime_base_url_from_env() -> str:
    """The WattTime API root for ``carbon-pipeline register`` and ``region``, which need no other setting."""
    return os.environ.get(WATTTIME_BASE_URL_VARIABLE) or WATTTIME_BASE_URL


def watttime_username_from_env() -> str | None:
    """The account ``carbon-pipeline region`` logs in with; ``None`` when unset or empty."""
    return os.environ.get(WATTTIME_USERNAME_VARIABLE) or None


def watttime_password_from_env() -> str | None:
    """The password ``carbon-pipeline register`` and ``region`` send, for scripts; ``None`` when unset."""
    return os.environ.get(WATTTIME_PASSWORD_VARIABLE)


def simulator_username_from_env() -> str | None:
    """The standalone simulator's account name, when set and not empty."""
    return os.environ.get(SIMULATOR_USERNAME_VARIABLE) or None


def simulator_password_from_env() -> str | None:
    """The standalone simulator's password, when set and not empty; it is never printed."""
    return os.environ.get(SIMULATOR_PASSWORD_VARIABLE) or None


def _problems(error: ValidationError) -> str:
    """Our validators' own messages; for anything else the variable and pydantic's reason, never the value."""
    problems = []
    for item in error.errors():
        if item["type"] == "default_factory_not_called":
            continue  # a default that depends on a field which failed, whose own error is reported
        cause = (item.get("ctx") or {}).get("error")
        if isinstance(cause, ConfigurationError):
            problems.append(str(cause))
        else:
            field = str(item["loc"][0]) if item["loc"] else ""
            name = PipelineSettings.variable(field) if field in PipelineSettings.model_fields else field
            problems.append(f"{name}: {item['msg']}")
    return "; ".join(problems)
