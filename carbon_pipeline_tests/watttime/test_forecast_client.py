"""The WattTime client's forecast, historical-forecast and region-from-loc calls, over real loopback HTTP.

The simulator runs on a clock the test holds (2025-01-10 12:00 UTC), so issue times are known in advance. A few
broken reply shapes the simulator cannot produce come from the scripted server.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from carbon_pipeline.watttime.client import WattTimeClient
from carbon_pipeline.watttime.errors import (
    WattTimeArchiveError,
    WattTimeNoCoverageError,
    WattTimePlanError,
    WattTimeResponseError,
    WattTimeUnavailableError,
    WattTimeUnknownRegionError,
)
from carbon_pipeline.watttime.forecasts import first_issues
from carbon_pipeline.watttime.simulator import Fault
from carbon_pipeline_tests.support.scripted_watttime import scripted_server
from carbon_pipeline_tests.support.simulator_session import NOW, ClientFactory, Sim

FORECAST = "/v3/forecast"
FORECAST_HISTORICAL = "/v3/forecast/historical"
REGION_FROM_LOC = "/v3/region-from-loc"
DAY = timedelta(days=1)
FIVE_MINUTES = timedelta(minutes=5)
QUARTER = timedelta(minutes=15)
FIRST_DAY = datetime(2025, 1, 5, tzinfo=UTC)


@pytest.fixture
def client(sim: Sim, client_factory: ClientFactory) -> WattTimeClient:
    return client_factory(sim.server.base_url)


def requests_to(sim: Sim, path: str) -> int:
    count: int = sim.server.state.stats()["requests"][path]
    return count


def forecast_body(data: list[Any], **meta: Any) -> dict[str, Any]:
    return {"data": data, "meta": {"data_point_period_seconds": 300, "units": "lbs_co2_per_mwh", **meta}}


POINT = {"point_time": "2025-01-10T12:00:00+00:00", "value": 800.0}


# ##### /v3/forecast


def test_the_forecast_is_typed_and_carries_its_issue_time(sim: Sim, client: WattTimeClient) -> None:
    forecast = client.forecast("CAISO_NORTH")
    assert (forecast.region, forecast.signal_type, forecast.units, forecast.model_date, forecast.period_seconds) == (
        "CAISO_NORTH",
        "co2_moer",
        "lbs_co2_per_mwh",
        "2023-03-01",
        300,
    )
    assert forecast.generated_at == NOW and forecast.generated_at.tzinfo is UTC
    assert forecast.request_id
    assert len(forecast.frame) == 288
    assert forecast.frame["point_time"].iloc[0] == pd.Timestamp(NOW)
    assert (forecast.start, forecast.end) == (NOW, NOW + DAY)
    served = sim.forecast().json()["data"]
    assert forecast.frame["value"].tolist() == [point["value"] for point in served]


def test_the_issue_time_follows_the_5_minute_grid(sim: Sim, client: WattTimeClient) -> None:
    sim.clock.advance(7 * 60 + 13)
    forecast = client.forecast("CAISO_NORTH", horizon_hours=1)
    assert forecast.generated_at == NOW + FIVE_MINUTES
    assert len(forecast.frame) == 12


def test_the_horizon_and_the_model_are_sent(sim: Sim, client: WattTimeClient) -> None:
    assert len(client.forecast("CAISO_NORTH", horizon_hours=72).frame) == 864
    newest, pinned = client.forecast("CAISO_NORTH"), client.forecast("CAISO_NORTH", model="2022-10-01")
    assert (newest.model_date, pinned.model_date) == ("2023-03-01", "2022-10-01")
    assert newest.frame["value"].tolist() != pinned.frame["value"].tolist()


@pytest.mark.parametrize("horizon", [0, 73, -1, True, 24.0, "24"])
def test_a_bad_horizon_is_refused_before_any_request(sim: Sim, client: WattTimeClient, horizon: Any) -> None:
    with pytest.raises(ValueError, match="horizon_hours"):
        client.forecast("CAISO_NORTH", horizon_hours=horizon)
    with pytest.raises(ValueError, match="horizon_hours"):
        client.historical_forecasts("CAISO_NORTH", FIRST_DAY, FIRST_DAY + DAY, horizon_hours=horizon)
    assert sim.server.state.stats()["logins"] == 0


def test_a_blank_model_is_refused_before_any_request(sim: Sim, client: WattTimeClient) -> None:
    with pytest.raises(ValueError, match="model"):
        client.forecast("CAISO_NORTH", model=" ")
    assert sim.server.state.stats()["logins"] == 0


@pytest.mark.parametrize("kind", ["nulls", "short_horizon", "stale_generated_at"])
def test_bad_forecasts_reach_validation_as_they_came(sim: Sim, client: WattTimeClient, kind: str) -> None:
    sim.server.state.inject(Fault(kind, path=FORECAST))
    forecast = client.forecast("CAISO_NORTH")
    frame = forecast.frame
    if kind == "nulls":
        assert len(frame) == 288 and frame["value"].isna().sum() == 58
        assert frame.loc[frame["value"].isna(), "raw_value"].tolist() == [None] * 58
    elif kind == "short_horizon":
        assert len(frame) == 144
    else:
        assert forecast.generated_at == NOW - timedelta(hours=1)


def test_an_empty_forecast_is_an_empty_frame_at_its_issue_time(sim: Sim, client: WattTimeClient) -> None:
    sim.server.state.inject(Fault("empty", path=FORECAST))
    forecast = client.forecast("CAISO_NORTH")
    assert forecast.frame.empty and forecast.start == forecast.end == NOW


# ##### /v3/forecast/historical


def test_three_days_are_three_non_overlapping_calls(sim: Sim, client: WattTimeClient) -> None:
    forecasts = client.historical_forecasts("CAISO_NORTH", FIRST_DAY, FIRST_DAY + 3 * DAY)
    queries = sim.server.state.stats()["forecast_historical_queries"]  # in arrival order: chunks run side by side
    assert sorted((query["start"], query["end"], query["horizon_hours"]) for query in queries) == [
        ("2025-01-05T00:00:00+00:00", "2025-01-05T23:59:59+00:00", "24"),
        ("2025-01-06T00:00:00+00:00", "2025-01-06T23:59:59+00:00", "24"),
        ("2025-01-07T00:00:00+00:00", "2025-01-07T23:59:59+00:00", "24"),
    ]
    assert [forecast.generated_at for forecast in forecasts] == [FIRST_DAY + n * FIVE_MINUTES for n in range(864)]
    assert all(len(forecast.frame) == 288 for forecast in forecasts)
    assert {(forecast.units, forecast.model_date, forecast.period_seconds) for forecast in forecasts} == {
        ("lbs_co2_per_mwh", "2023-03-01", 300)
    }


def test_a_quarter_hour_is_one_call_for_its_three_issues(sim: Sim, client: WattTimeClient) -> None:
    start = datetime(2025, 1, 9, 12, tzinfo=UTC)
    forecasts = client.historical_forecasts("CAISO_NORTH", start, start + timedelta(minutes=15), horizon_hours=1)
    [query] = sim.server.state.stats()["forecast_historical_queries"]
    assert (query["start"], query["end"]) == ("2025-01-09T12:00:00+00:00", "2025-01-09T12:14:59+00:00")
    assert [forecast.generated_at.strftime("%H:%M") for forecast in forecasts] == ["12:00", "12:05", "12:10"]
    assert [len(forecast.frame) for forecast in forecasts] == [12, 12, 12]


def test_one_issue_per_interval_keeps_the_first_of_each(client: WattTimeClient) -> None:
    forecasts = client.historical_forecasts("CAISO_NORTH", FIRST_DAY, FIRST_DAY + DAY, issue_interval=QUARTER)
    assert [forecast.generated_at for forecast in forecasts] == [FIRST_DAY + n * QUARTER for n in range(96)]
    assert all(len(forecast.frame) == 288 for forecast in forecasts)


def test_an_interval_straddling_two_calls_keeps_its_earliest_issue(sim: Sim, client: WattTimeClient) -> None:
    start = FIRST_DAY + FIVE_MINUTES
    forecasts = client.historical_forecasts("CAISO_NORTH", start, start + 2 * DAY, issue_interval=QUARTER)
    assert len(sim.server.state.stats()["forecast_historical_queries"]) == 2
    expected = [start] + [FIRST_DAY + n * QUARTER for n in range(1, 2 * 96 + 1)]
    assert [forecast.generated_at for forecast in forecasts] == expected


def test_the_first_issues_are_found_in_any_order() -> None:
    issues = [datetime(2025, 1, 5, 12, minute, tzinfo=UTC) for minute in (10, 5, 20, 15, 30)]
    assert first_issues(issues, QUARTER) == [1, 3, 4]


def test_an_empty_issue_interval_is_refused_before_any_request(sim: Sim, client: WattTimeClient) -> None:
    with pytest.raises(ValueError, match="issue_interval"):
        client.historical_forecasts("CAISO_NORTH", FIRST_DAY, FIRST_DAY + DAY, issue_interval=timedelta(0))
    assert sim.server.state.stats()["logins"] == 0


def test_the_archive_gives_back_the_live_forecast(client: WattTimeClient) -> None:
    live = client.forecast("CAISO_NORTH", model="2022-10-01")
    [archived] = client.historical_forecasts("CAISO_NORTH", NOW, NOW + FIVE_MINUTES, model="2022-10-01")
    assert archived.generated_at == live.generated_at and archived.model_date == "2022-10-01"
    pd.testing.assert_frame_equal(archived.frame, live.frame)


def test_bad_windows_are_refused_before_any_request(sim: Sim, client: WattTimeClient) -> None:
    with pytest.raises(ValueError, match="must be after start"):
        client.historical_forecasts("CAISO_NORTH", FIRST_DAY, FIRST_DAY)
    with pytest.raises(ValueError, match="timezone-aware"):
        client.historical_forecasts("CAISO_NORTH", datetime(2025, 1, 5), FIRST_DAY + DAY)  # noqa: DTZ001
    assert sim.server.state.stats()["logins"] == 0


# ##### retries and typed errors, as for /v3/historical


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
@pytest.mark.parametrize("path", [FORECAST, FORECAST_HISTORICAL])
def test_transient_failures_are_retried(sim: Sim, client: WattTimeClient, status: int, path: str) -> None:
    sim.server.state.inject(Fault("status", status=status, count=2, path=path))
    if path == FORECAST:
        assert len(client.forecast("CAISO_NORTH").frame) == 288
    else:
        assert len(client.historical_forecasts("CAISO_NORTH", FIRST_DAY, FIRST_DAY + timedelta(hours=1))) == 12
    assert requests_to(sim, path) == 3


def test_a_lasting_outage_is_unavailable_naming_the_call(sim: Sim, client_factory: ClientFactory) -> None:
    client = client_factory(sim.server.base_url, max_attempts=2)
    sim.server.state.inject(Fault("status", status=503, count=5, path=FORECAST_HISTORICAL))
    with pytest.raises(WattTimeUnavailableError) as raised:
        client.historical_forecasts("PSCO", FIRST_DAY, FIRST_DAY + DAY)
    message = str(raised.value)
    assert "GET /v3/forecast/historical, region PSCO" in message and "2 attempt(s)" in message
    assert "2025-01-05T00:00:00+00:00" in message


def test_malformed_json_is_retried_then_a_response_error(sim: Sim, client_factory: ClientFactory) -> None:
    client = client_factory(sim.server.base_url, max_attempts=2)
    sim.server.state.inject(Fault("malformed_json", path=FORECAST))
    assert len(client.forecast("CAISO_NORTH").frame) == 288
    sim.server.state.inject(Fault("malformed_json", count=2, path=FORECAST))
    with pytest.raises(WattTimeResponseError, match="not valid JSON"):
        client.forecast("CAISO_NORTH")


def test_a_region_without_forecast_access_is_a_plan_error_naming_it(
    make_sim: Callable[..., Sim], client_factory: ClientFactory
) -> None:
    sim = make_sim(forecast_regions=frozenset({"CAISO_NORTH"}))
    client = client_factory(sim.server.base_url)
    with pytest.raises(WattTimePlanError, match="does not cover forecasts for region PJM_DC"):
        client.forecast("PJM_DC")
    with pytest.raises(WattTimePlanError, match="region PJM_DC"):
        client.historical_forecasts("PJM_DC", FIRST_DAY, FIRST_DAY + DAY)
    assert (requests_to(sim, FORECAST), sim.server.state.stats()["statuses"][403]) == (1, 2)
    assert len(client.forecast("CAISO_NORTH").frame) == 288


def test_a_window_outside_the_archive_is_an_archive_error(
    make_sim: Callable[..., Sim], client_factory: ClientFactory
) -> None:
    sim = make_sim(forecast_archive_start=datetime(2025, 1, 1, tzinfo=UTC))
    client = client_factory(sim.server.base_url)
    with pytest.raises(WattTimeArchiveError) as raised:
        client.historical_forecasts("CAISO_NORTH", datetime(2024, 12, 1, tzinfo=UTC), datetime(2024, 12, 2, tzinfo=UTC))
    assert "region CAISO_NORTH" in str(raised.value) and "2024-12-01T00:00:00+00:00" in str(raised.value)
    assert not raised.value.retryable and raised.value.request_id
    assert requests_to(sim, FORECAST_HISTORICAL) == 1
    sim.server.state.inject(Fault("outside_archive", path=FORECAST_HISTORICAL))
    with pytest.raises(WattTimeArchiveError):
        client.historical_forecasts("CAISO_NORTH", FIRST_DAY, FIRST_DAY + DAY)


def test_an_unknown_region_is_named(sim: Sim, client: WattTimeClient) -> None:
    with pytest.raises(WattTimeUnknownRegionError, match="NOPE_REGION"):
        client.forecast("NOPE_REGION")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (forecast_body([POINT]), "meta.generated_at should be an ISO-8601 timestamp"),
        (forecast_body([POINT], generated_at="2025-01-10T12:00:00"), "meta.generated_at has no timezone"),
        (forecast_body([POINT], generated_at="noon"), "meta.generated_at is not an ISO-8601 timestamp"),
        (forecast_body([{"point_time": POINT["point_time"]}], generated_at=POINT["point_time"]), "'value'"),
        ({"data": {}, "meta": {}}, "'data' list"),
    ],
)
def test_broken_forecast_replies_are_response_errors(
    client_factory: ClientFactory, body: dict[str, Any], problem: str
) -> None:
    with scripted_server((200, {}, body)) as server, pytest.raises(WattTimeResponseError, match=problem) as raised:
        client_factory(server.base_url).forecast("CAISO_NORTH")
    assert "GET /v3/forecast, region CAISO_NORTH" in str(raised.value)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (["not an object"], r"data\[0\] should be an object with a 'forecast' list"),
        ([{"generated_at": POINT["point_time"], "forecast": {}}], r"data\[0\] should be an object"),
        ([{"forecast": [POINT]}], r"data\[0\]\.generated_at should be"),
        ([{"generated_at": POINT["point_time"], "forecast": [{"value": 1.0}]}], "'point_time'"),
    ],
)
def test_broken_historical_forecast_replies_are_response_errors(
    client_factory: ClientFactory, data: list[Any], problem: str
) -> None:
    with scripted_server((200, {}, forecast_body(data))) as server, pytest.raises(WattTimeResponseError, match=problem):
        client_factory(server.base_url).historical_forecasts("CAISO_NORTH", FIRST_DAY, FIRST_DAY + FIVE_MINUTES)


def test_a_historical_forecast_reply_logs_its_warnings_once(
    client_factory: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    warning = [{"type": "MISSING_RUNS", "message": "2 runs missing"}]
    data = [{"generated_at": POINT["point_time"], "forecast": [POINT]}] * 3
    with scripted_server((200, {}, forecast_body(data, warnings=warning))) as server:
        forecasts = client_factory(server.base_url).historical_forecasts("PSCO", FIRST_DAY, FIRST_DAY + FIVE_MINUTES)
    assert [forecast.warnings for forecast in forecasts] == [("MISSING_RUNS: 2 runs missing",)] * 3
    logged = [record for record in caplog.records if "MISSING_RUNS" in record.getMessage()]
    assert len(logged) == 1 and logged[0].levelno == logging.WARNING


# ##### /v3/region-from-loc


def test_the_region_of_a_location_and_its_full_name(sim: Sim, client: WattTimeClient) -> None:
    found = client.region_from_location(42.372, -72.519)
    assert (found.region, found.full_name, found.signal_type) == (
        "ISONE_WCMA",
        "ISONE Western/Central Massachusetts",
        "co2_moer",
    )
    assert found.request_id
    assert client.region_from_location(42.372, -72.519, "co2_aoer").region == "ISONE"
    assert requests_to(sim, REGION_FROM_LOC) == 2


def test_a_location_without_coverage_is_a_coverage_error(client: WattTimeClient) -> None:
    with pytest.raises(WattTimeNoCoverageError, match="latitude 0, longitude 0") as raised:
        client.region_from_location(0.0, 0.0)
    assert "No coverage available" in str(raised.value)


@pytest.mark.parametrize(
    ("latitude", "longitude", "problem"),
    [(90.5, 0, "latitude"), (0, -181, "longitude"), (float("nan"), 0, "latitude"), (0, True, "longitude")],
)
def test_bad_coordinates_are_refused_before_any_request(
    sim: Sim, client: WattTimeClient, latitude: float, longitude: float, problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        client.region_from_location(latitude, longitude)
    assert sim.server.state.stats()["logins"] == 0


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"region": "isone wcma", "region_full_name": "x"}, "'region' should be a region code"),
        ({"region": "ISONE_WCMA", "region_full_name": " "}, "'region_full_name' should be a name"),
        ({"region": "ISONE", "region_full_name": "ISO NE", "signal_type": "co2_aoer"}, "asked for co2_moer"),
        ([], "expected a JSON object"),
    ],
)
def test_broken_region_replies_are_response_errors(client_factory: ClientFactory, body: Any, problem: str) -> None:
    with scripted_server((200, {}, body)) as server, pytest.raises(WattTimeResponseError, match=problem):
        client_factory(server.base_url).region_from_location(42.372, -72.519)
