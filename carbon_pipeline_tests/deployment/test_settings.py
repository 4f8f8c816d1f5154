"""Load-time settings: defaults, and a clear error naming the variable for every bad value."""

from datetime import UTC, datetime

import pytest

from carbon_pipeline.settings import ConfigurationError, PipelineSettings, is_placeholder

PROD = {
    "DAGSTER_DEPLOYMENT": "prod",
    "WATTTIME_USERNAME": "grid-user",
    "WATTTIME_PASSWORD": "s3cret-Pass!",
    "INFLUXDB_HOST": "http://influxdb:8086",
    "INFLUXDB_TOKEN": "tok",
    "INFLUXDB_DATABASE": "carbon",
}


def test_defaults_are_the_local_free_region_from_2025() -> None:
    settings = PipelineSettings.from_env({})
    assert settings.deployment == "local"
    assert settings.regions == ("CAISO_NORTH",)
    assert settings.partitions_start == datetime(2025, 1, 1, tzinfo=UTC)
    assert settings.schedule_delay_minutes == 5


def test_regions_are_parsed_and_validated() -> None:
    assert PipelineSettings.from_env({"CARBON_REGIONS": " CAISO_NORTH, PJM_DC "}).regions == ("CAISO_NORTH", "PJM_DC")
    with pytest.raises(ConfigurationError, match=r"CARBON_REGIONS.*caiso-north"):
        PipelineSettings.from_env({"CARBON_REGIONS": "caiso-north"})


def test_alerting_and_gap_filling_settings_have_defaults_and_can_be_set() -> None:
    defaults = PipelineSettings.from_env({})
    assert (defaults.alert_after_failures, defaults.gap_fill_hours, defaults.gap_fill_max_runs) == (3, 168, 2)
    custom = PipelineSettings.from_env(
        {"CARBON_ALERT_AFTER_FAILURES": "5", "CARBON_GAP_FILL_HOURS": "24", "CARBON_GAP_FILL_MAX_RUNS": "4"}
    )
    assert (custom.alert_after_failures, custom.gap_fill_hours, custom.gap_fill_max_runs) == (5, 24, 4)


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


def test_placeholder_detection_spares_real_values() -> None:
    assert not is_placeholder("Yourself-1!")
    assert not is_placeholder("http://influxdb:8086")
    assert is_placeholder("  ")
