"""Load-time settings: defaults, the partition window, and a clear error naming the variable for every bad value."""

import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from carbon_pipeline.settings import (
    ConfigurationError,
    PipelineSettings,
    is_placeholder,
)
from carbon_pipeline.settings_electricitymaps import (
    REQUESTS_PER_SECOND_VARIABLE as ELECTRICITYMAPS_REQUESTS_PER_SECOND_VARIABLE,
)

# Mid-afternoon, so a window floored to the UTC day visibly differs from one counted from now.
NOW = datetime(2026, 3, 8, 15, 42, 17, tzinfo=UTC)

PROD = {
    "DAGSTER_DEPLOYMENT": "prod",
    "WATTTIME_USERNAME": "grid-user",
    "WATTTIME_PASSWORD": "s3cret-Pass!",
    "INFLUXDB_HOST": "http://influxdb:8086",
    "INFLUXDB_TOKEN": "tok",
    "INFLUXDB_DATABASE": "carbon",
}


def test_defaults_are_the_local_free_region_over_the_last_four_weeks() -> None:
    settings = PipelineSettings.from_env({}, now=NOW)
    assert settings.deployment == "local"
    assert settings.regions == ("CAISO_NORTH",)
    assert settings.partitions_start == datetime(2026, 2, 8, tzinfo=UTC)
    assert settings.schedule_delay_minutes == 5


def test_the_local_default_window_is_the_same_all_day_and_moves_at_utc_midnight() -> None:
    day_start, day_end = NOW.replace(hour=0, minute=0, second=0), NOW.replace(hour=23, minute=59, second=59)
    starts = {PipelineSettings.from_env({}, now=moment).partitions_start for moment in (day_start, NOW, day_end)}
    assert starts == {datetime(2026, 2, 8, tzinfo=UTC)}
    assert PipelineSettings.from_env({}, now=day_end + timedelta(seconds=1)).partitions_start == datetime(
        2026, 2, 9, tzinfo=UTC
    )


def test_production_keeps_its_history_from_2025_by_default() -> None:
    assert PipelineSettings.from_env(PROD, now=NOW).partitions_start == datetime(2025, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "start"),
    [
        ("400d", datetime(2025, 2, 1, tzinfo=UTC)),
        (" 1d ", datetime(2026, 3, 7, tzinfo=UTC)),
        ("3660d", datetime(2016, 2, 29, tzinfo=UTC)),
        ("2025-06-01", datetime(2025, 6, 1, tzinfo=UTC)),
        ("2026-03-08", datetime(2026, 3, 8, tzinfo=UTC)),
    ],
)
def test_partitions_start_is_a_utc_date_or_a_number_of_days_before_today(value: str, start: datetime) -> None:
    for deployment in ("local", "prod"):
        env = PROD | {"DAGSTER_DEPLOYMENT": deployment, "CARBON_PARTITIONS_START": value}
        assert PipelineSettings.from_env(env, now=NOW).partitions_start == start


@pytest.mark.parametrize("value", ["0d", "3661d", "-5d", "28", "28D", "28 d", "4w", "1y", "P28D", "", "2026-03-09"])
def test_partitions_start_that_is_neither_refuses_to_load_naming_the_variable_and_value(value: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^CARBON_PARTITIONS_START=") as raised:
        PipelineSettings.from_env({"CARBON_PARTITIONS_START": value}, now=NOW)
    assert repr(value) in str(raised.value)


def test_regions_are_parsed_and_validated() -> None:
    assert PipelineSettings.from_env({"CARBON_REGIONS": " CAISO_NORTH, PJM_DC "}).regions == ("CAISO_NORTH", "PJM_DC")
    with pytest.raises(ConfigurationError, match=r"CARBON_REGIONS.*caiso-north"):
        PipelineSettings.from_env({"CARBON_REGIONS": "caiso-north"})


def test_alerting_and_gap_filling_settings_have_defaults_and_can_be_set() -> None:
    def read(settings: PipelineSettings) -> tuple[int, ...]:
        return (
            settings.alert_after_failures,
            settings.gap_fill_hours,
            settings.gap_fill_max_runs,
            settings.refused_retry_minutes,
        )

    assert read(PipelineSettings.from_env({})) == (3, 168, 2, 360)
    custom = PipelineSettings.from_env(
        {
            "CARBON_ALERT_AFTER_FAILURES": "5",
            "CARBON_GAP_FILL_HOURS": "24",
            "CARBON_GAP_FILL_MAX_RUNS": "4",
            "CARBON_REFUSED_RETRY_MINUTES": "30",
        }
    )
    assert read(custom) == (5, 24, 4, 30)


def test_the_revision_window_defaults_to_a_week_and_a_bad_one_names_its_variable_and_range() -> None:
    assert PipelineSettings.from_env({}).revision_days == 7
    assert PipelineSettings.from_env({"CARBON_REVISION_DAYS": "30"}).revision_days == 30
    for bad in ("0", "31", "a week"):
        with pytest.raises(ConfigurationError) as raised:
            PipelineSettings.from_env({"CARBON_REVISION_DAYS": bad})
        assert str(raised.value) == (
            f"CARBON_REVISION_DAYS={bad!r}: expected days back the revision sweep asks WattTime for revised values, "
            "a whole number from 1 to 30."
        )


def test_forecast_settings_have_defaults_and_can_be_set() -> None:
    defaults = PipelineSettings.from_env({})
    assert (defaults.forecast_horizon_hours, defaults.forecast_delay_minutes, defaults.window_hours) == (
        24,
        2,
        (1, 2, 4),
    )
    custom = PipelineSettings.from_env(
        {"CARBON_FORECAST_HORIZON_HOURS": "72", "CARBON_FORECAST_DELAY_MINUTES": "0", "CARBON_WINDOW_HOURS": "8, 3,3"}
    )
    assert (custom.forecast_horizon_hours, custom.forecast_delay_minutes, custom.window_hours) == (72, 0, (3, 8))


def test_signal_index_settings_have_defaults_and_can_be_set() -> None:
    defaults = PipelineSettings.from_env({})
    assert (defaults.index_delay_minutes, defaults.index_signal_type) == (1, "co2_moer")
    custom = PipelineSettings.from_env({"CARBON_INDEX_DELAY_MINUTES": "10", "CARBON_INDEX_SIGNAL_TYPE": "co2_aoer"})
    assert (custom.index_delay_minutes, custom.index_signal_type) == (10, "co2_aoer")


def test_a_window_longer_than_the_forecast_refuses_to_load_naming_both_variables() -> None:
    with pytest.raises(
        ConfigurationError, match=r"CARBON_WINDOW_HOURS.*6 h.*4 h forecast.*CARBON_FORECAST_HORIZON_HOURS"
    ):
        PipelineSettings.from_env({"CARBON_FORECAST_HORIZON_HOURS": "4", "CARBON_WINDOW_HOURS": "2,6"})


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DAGSTER_DEPLOYMENT", "staging"),
        ("CARBON_PARTITIONS_START", "01/01/2025"),
        ("CARBON_PARTITIONS_START", "2999-01-01"),
        ("CARBON_SCHEDULE_DELAY_MINUTES", "15"),
        ("CARBON_SCHEDULE_DELAY_MINUTES", "soon"),
        ("CARBON_ALERT_AFTER_FAILURES", "0"),
        ("CARBON_GAP_FILL_HOURS", "-5"),
        ("CARBON_GAP_FILL_HOURS", "9000"),
        ("CARBON_GAP_FILL_MAX_RUNS", "50"),
        ("CARBON_REFUSED_RETRY_MINUTES", "0"),
        ("CARBON_REFUSED_RETRY_MINUTES", "10081"),
        ("CARBON_FORECAST_HORIZON_HOURS", "0"),
        ("CARBON_FORECAST_HORIZON_HOURS", "73"),
        ("CARBON_FORECAST_DELAY_MINUTES", "5"),
        ("CARBON_INDEX_DELAY_MINUTES", "11"),
        ("CARBON_INDEX_SIGNAL_TYPE", "co2_moer_index"),
        ("CARBON_WINDOW_HOURS", "2,x"),
        ("CARBON_WINDOW_HOURS", "0"),
        ("CARBON_WINDOW_HOURS", "1.5"),
        ("CARBON_WINDOW_HOURS", " , "),
    ],
)
def test_malformed_values_fail_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        PipelineSettings.from_env({variable: value})


@pytest.mark.parametrize(
    "variable", ["WATTTIME_USERNAME", "WATTTIME_PASSWORD", "INFLUXDB_HOST", "INFLUXDB_TOKEN", "INFLUXDB_DATABASE"]
)
@pytest.mark.parametrize("value", [None, "", "changeme", "<your token>", "your_password_here"])
def test_prod_refuses_missing_or_placeholder_settings(variable: str, value: str | None) -> None:
    env = {key: val for key, val in PROD.items() if key != variable}
    if value is not None:
        env[variable] = value
    with pytest.raises(ConfigurationError, match=variable) as raised:
        PipelineSettings.from_env(env)
    assert "s3cret-Pass!" not in str(raised.value)


def test_prod_loads_with_real_values() -> None:
    assert PipelineSettings.from_env(PROD).deployment == "prod"


def test_settings_hold_whether_secrets_are_set_never_their_values() -> None:
    webhook = "https://hooks.example.org/T000/B000/WEBHOOK-SECRET"
    settings = PipelineSettings.from_env(PROD | {"ALERT_WEBHOOK_URL": webhook})
    assert settings.alert_webhook is True
    held = repr(settings) + settings.model_dump_json()
    assert all(secret not in held for secret in ("s3cret-Pass!", PROD["INFLUXDB_TOKEN"], "WEBHOOK-SECRET"))
    assert PipelineSettings.from_env(PROD).alert_webhook is False


def test_a_malformed_secret_is_refused_without_its_value_even_in_the_traceback() -> None:
    schemeless = {"ALERT_WEBHOOK_URL": "hooks.example.org/T000/B000/WEBHOOK-SECRET"}
    with pytest.raises(ConfigurationError, match=r"^ALERT_WEBHOOK_URL: ") as raised:
        PipelineSettings.from_env(schemeless)
    assert "WEBHOOK-SECRET" not in "".join(traceback.format_exception(raised.value))


def test_every_bad_value_is_reported_at_once() -> None:
    with pytest.raises(ConfigurationError) as raised:
        PipelineSettings.from_env({"CARBON_REGIONS": "caiso-north", "CARBON_GAP_FILL_HOURS": "0"})
    assert str(raised.value).startswith("CARBON_REGIONS: ") and "; CARBON_GAP_FILL_HOURS='0': expected" in str(
        raised.value
    )


def test_resource_settings_have_defaults_and_are_read_from_their_variables(tmp_path: Path) -> None:
    defaults = PipelineSettings.from_env({})
    assert (defaults.ui_url, defaults.watttime_base_url) == ("http://127.0.0.1:3000", "https://api.watttime.org")
    assert defaults.line_protocol_directory == (Path.cwd() / ".dagster_home" / "line_protocol")
    assert PipelineSettings.from_env({"DAGSTER_HOME": str(tmp_path)}).line_protocol_directory == (
        tmp_path / "line_protocol"
    )
    custom = PipelineSettings.from_env(
        {
            "DAGSTER_HOME": str(tmp_path),
            "CARBON_LINE_PROTOCOL_DIR": str(tmp_path / "points"),
            "CARBON_UI_URL": "https://dagster.internal",
            "WATTTIME_BASE_URL": "https://watttime.internal",
            "INFLUXDB_WRITE_API": "v2",
        }
    )
    assert custom.line_protocol_directory == tmp_path / "points"
    assert (custom.ui_url, custom.watttime_base_url, custom.influxdb_write_api) == (
        "https://dagster.internal",
        "https://watttime.internal",
        "v2",
    )
    with pytest.raises(ConfigurationError, match=r"^INFLUXDB_WRITE_API='v1': expected v3 .* or v2"):
        PipelineSettings.from_env({"INFLUXDB_WRITE_API": "v1"})


def test_the_electricity_maps_rate_defaults_to_one_a_second_and_a_bad_one_names_its_variable() -> None:
    assert PipelineSettings.from_env({}).electricitymaps_requests_per_second == 1.0
    settings = PipelineSettings.from_env({ELECTRICITYMAPS_REQUESTS_PER_SECOND_VARIABLE: "0.0083"})
    assert settings.electricitymaps_requests_per_second == 0.0083
    for bad in ("fast", "0", "-1", "nan", "2000"):
        with pytest.raises(ConfigurationError, match=rf"ELECTRICITYMAPS_REQUESTS_PER_SECOND='{bad}': expected"):
            PipelineSettings.from_env({ELECTRICITYMAPS_REQUESTS_PER_SECOND_VARIABLE: bad})


def test_variables_are_read_by_their_exact_names_only() -> None:
    """A shell variable that happens to be called like a field (``regions``) must not change anything."""
    assert PipelineSettings.from_env({"regions": "PJM_DC", "carbon_regions": "PJM_DC"}).regions == ("CAISO_NORTH",)


def test_placeholder_detection_spares_real_values() -> None:
    assert not is_placeholder("Yourself-1!")
    assert not is_placeholder("http://influxdb:8086")
    assert is_placeholder("  ")
