"""The WattTime v3 simulator, driven over real loopback HTTP."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from carbon_pipeline.watttime.simulator import (
    FREE_PLAN_REGIONS,
    REGIONS,
    SIMULATOR_PASSWORD,
    SIMULATOR_USERNAME,
    Fault,
    moer_value,
)
from carbon_pipeline_tests.support.simulator_session import DAY_START, NOW, Sim


@pytest.fixture
def sim(make_sim: Callable[..., Sim]) -> Sim:
    return make_sim()


def point_times(body: dict[str, Any]) -> list[str]:
    return [point["point_time"] for point in body["data"]]


def values(response: httpx.Response) -> list[Any]:
    return [point["value"] for point in response.json()["data"]]


# --- authentication -------------------------------------------------------------------------


def test_login_token_authorizes_data_calls(sim: Sim) -> None:
    login = sim.login()
    assert login.status_code == 200
    assert set(login.json()) == {"token"}
    assert sim.historical().status_code == 200


def test_token_expires_after_its_ttl(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(token_ttl_seconds=1)
    assert sim.historical().status_code == 200
    sim.clock.advance(1)
    expired = sim.historical()
    assert expired.status_code == 401
    assert "error" in expired.json()


def test_expire_tokens_forces_a_new_login(sim: Sim) -> None:
    assert sim.historical().status_code == 200
    sim.server.state.expire_tokens()
    assert sim.historical().status_code == 401
    sim.token = None
    assert sim.historical().status_code == 200


def test_issued_tokens_keeps_every_token_a_login_handed_out_even_after_it_expired(sim: Sim) -> None:
    """Tests look for them where secrets must never appear, so a forgotten token is still listed."""
    first = sim.login().json()["token"]
    sim.server.state.expire_tokens()
    second = sim.login().json()["token"]
    sim.server.state.reset_stats()
    assert sim.server.state.issued_tokens() == (first, second)


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", "Basic c2ltdWxhdG9yOng="])
def test_data_call_without_a_valid_token_is_401(sim: Sim, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = sim.client.get("/v3/my-access", headers=headers)
    assert response.status_code == 401
    assert "error" in response.json()


@pytest.mark.parametrize(
    "auth", [(SIMULATOR_USERNAME, "wrong-password"), ("nobody", SIMULATOR_PASSWORD), None], ids=str
)
def test_bad_or_missing_credentials_are_403(sim: Sim, auth: tuple[str, str] | None) -> None:
    response = sim.client.get("/login", auth=auth)
    assert response.status_code == 403
    assert "error" in response.json()


def test_login_rate_limit_gives_429_without_retry_after(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(login_rate_limit=3)
    assert [sim.login().status_code for _ in range(3)] == [200, 200, 200]
    limited = sim.login()
    assert limited.status_code == 429
    assert "retry-after" not in limited.headers
    sim.clock.advance(300)
    assert sim.login().status_code == 200


def test_data_rate_limit_is_per_rolling_window(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(data_rate_limit=2)
    assert [sim.historical().status_code for _ in range(3)] == [200, 200, 429]
    sim.clock.advance(300)
    assert sim.historical().status_code == 200


def test_passwords_and_tokens_never_reach_the_log(sim: Sim, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="carbon_pipeline.watttime.simulator")
    sim.historical()
    assert "GET /v3/historical" in caplog.text
    assert sim.token is not None
    assert sim.token not in caplog.text
    assert SIMULATOR_PASSWORD not in caplog.text


# --- /v3/historical -------------------------------------------------------------------------


def test_historical_reply_shape(sim: Sim) -> None:
    response = sim.historical(end="2025-01-01T00:10:00Z")
    assert response.status_code == 200
    assert response.headers["x-request-id"]
    body = response.json()
    assert body["meta"] == {
        "data_point_period_seconds": 300,
        "region": "CAISO_NORTH",
        "signal_type": "co2_moer",
        "units": "lbs_co2_per_mwh",
        "warnings": [],
        "model": {"date": "2023-03-01", "type": "binned_regression"},
    }
    assert all(set(point) == {"point_time", "value"} for point in body["data"])
    assert all(200 <= value <= 1600 and round(value, 1) == value for value in values(response))


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("00:00", "00:10", ["00:00", "00:05", "00:10"]),
        ("00:01", "00:09", ["00:05"]),
        ("00:05", "00:05", ["00:05"]),
    ],
)
def test_historical_bounds_are_inclusive(sim: Sim, start: str, end: str, expected: list[str]) -> None:
    response = sim.historical(f"2025-01-01T{start}:00+00:00", f"2025-01-01T{end}:00+00:00")
    assert point_times(response.json()) == [f"2025-01-01T{hhmm}:00+00:00" for hhmm in expected]


def test_offset_timestamps_are_converted_to_utc(sim: Sim) -> None:
    response = sim.historical("2024-12-31T19:00:00-05:00", "2024-12-31T19:05:00-05:00")
    assert point_times(response.json()) == ["2025-01-01T00:00:00+00:00", "2025-01-01T00:05:00+00:00"]


def test_publication_lag_hides_the_newest_points(sim: Sim) -> None:
    window = ("2025-01-10T11:50:00+00:00", "2025-01-10T12:00:00+00:00")
    assert point_times(sim.historical(*window).json()) == ["2025-01-10T11:50:00+00:00", "2025-01-10T11:55:00+00:00"]
    sim.clock.advance(120)
    assert point_times(sim.historical(*window).json())[-1] == "2025-01-10T12:00:00+00:00"


def test_range_with_nothing_published_is_empty(sim: Sim) -> None:
    response = sim.historical("2025-02-01T00:00:00+00:00", "2025-02-02T00:00:00+00:00")
    assert response.status_code == 200
    assert response.json()["data"] == []


def test_span_is_limited_to_32_days(sim: Sim) -> None:
    assert sim.historical("2024-11-01T00:00:00+00:00", "2024-12-03T00:00:00+00:00").status_code == 200
    too_long = sim.historical("2024-11-01T00:00:00+00:00", "2024-12-03T00:05:00+00:00")
    assert too_long.status_code == 400
    assert too_long.json()["error"] == "INVALID_QUERY_PARAMS"


def test_thirty_day_reply_is_complete_and_fast(sim: Sim) -> None:
    began = time.perf_counter()
    response = sim.historical("2024-12-01T00:00:00+00:00", "2024-12-30T23:55:00+00:00")
    assert time.perf_counter() - began < 1.0
    assert len(response.json()["data"]) == 8640


@pytest.mark.parametrize(
    ("start", "end", "status"),
    [
        ("2025-01-01T00:00:00", "2025-01-01T00:10:00+00:00", 400),
        ("2025-01-01T00:10:00+00:00", "2025-01-01T00:00:00+00:00", 400),
        ("yesterday", "2025-01-01T00:00:00+00:00", 422),
    ],
    ids=["naive", "end-before-start", "unparseable"],
)
def test_bad_time_bounds_are_rejected(sim: Sim, start: str, end: str, status: int) -> None:
    assert sim.historical(start, end).status_code == status


def test_missing_parameters_are_listed_fastapi_style(sim: Sim) -> None:
    response = sim.get("/v3/historical", region="CAISO_NORTH", signal_type="co2_moer")
    assert response.status_code == 422
    assert [item["loc"] for item in response.json()["detail"]] == [["query", "start"], ["query", "end"]]


def test_unknown_region_is_400(sim: Sim) -> None:
    response = sim.historical(region="XYZ")
    assert response.status_code == 400
    assert response.json()["error"] == "INVALID_QUERY_PARAMS"
    assert response.json()["message"] == "Unknown region 'XYZ' for signal_type co2_moer"


def test_unknown_signal_type_is_422(sim: Sim) -> None:
    response = sim.get("/v3/historical", region="CAISO_NORTH", signal_type="co2", start=DAY_START, end=DAY_START)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "signal_type"]


def test_unknown_model_is_400_and_the_current_model_is_accepted(sim: Sim) -> None:
    assert sim.historical(model="2023-03-01").status_code == 200
    assert sim.historical(model="1999-01-01").status_code == 400


def test_region_outside_the_plan_is_403_invalid_scope(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(plan_regions=FREE_PLAN_REGIONS)
    response = sim.historical(region="PJM_NJ")
    assert response.status_code == 403
    message = response.json()["message"]
    assert message.startswith("Invalid scope. You do not have sufficient access to this resource.")
    assert message.endswith("Please note that all users are allowed free access to CAISO_NORTH.")
    assert sim.historical(region="CAISO_NORTH").status_code == 200


def test_hourly_region_has_hourly_points(sim: Sim) -> None:
    response = sim.historical("2025-01-01T00:00:00+00:00", "2025-01-01T03:00:00+00:00", region="IE")
    assert response.json()["meta"]["data_point_period_seconds"] == 3600
    assert point_times(response.json()) == [f"2025-01-01T0{hour}:00:00+00:00" for hour in range(4)]


def test_imputed_marker_flags_a_few_points_only_on_request(sim: Sim) -> None:
    day = ("2025-01-01T00:00:00+00:00", "2025-01-01T23:55:00+00:00")
    marked = sim.historical(*day, include_imputed_marker="true").json()["data"]
    markers = [point["imputed_data_used"] for point in marked]
    assert 0 < sum(markers) < len(markers) / 10
    assert all("imputed_data_used" not in point for point in sim.historical(*day).json()["data"])


def test_same_request_gives_the_same_values_across_servers(make_sim: Callable[..., Sim]) -> None:
    first, second = make_sim(), make_sim()
    assert first.historical().json() == second.historical().json()


# --- signal ---------------------------------------------------------------------------------


def test_signal_stays_in_range_and_rounded_in_every_region() -> None:
    week = [NOW + timedelta(minutes=5 * step) for step in range(7 * 288)]
    samples = [moer_value(region, moment) for region in REGIONS for moment in week]
    assert all(200 <= value <= 1600 and round(value, 1) == value for value in samples)


def test_signal_levels_differ_between_regions() -> None:
    assert len({moer_value(region, NOW) for region in REGIONS}) > len(REGIONS) // 2


def test_signal_dips_at_midday_and_peaks_in_the_evening() -> None:
    def mean_at_local_hour(hour: int) -> float:
        # CAISO_NORTH is UTC-8.
        moments = [datetime(2025, 1, day, (hour + 8) % 24, tzinfo=UTC) for day in range(1, 29)]
        return sum(moer_value("CAISO_NORTH", moment) for moment in moments) / len(moments)

    assert mean_at_local_hour(13) < mean_at_local_hour(3) < mean_at_local_hour(19)


# --- /v3/forecast and /v3/my-access ---------------------------------------------------------


@pytest.mark.parametrize(("horizon", "count"), [(24, 288), (0, 1), (72, 864), (None, 288)])
def test_forecast_point_count_follows_horizon(sim: Sim, horizon: int | None, count: int) -> None:
    response = sim.forecast() if horizon is None else sim.forecast(horizon_hours=horizon)
    assert len(response.json()["data"]) == count


def test_forecast_starts_at_the_current_period(sim: Sim) -> None:
    sim.clock.advance(7 * 60)
    body = sim.forecast(horizon_hours=1).json()
    assert body["data"][0]["point_time"] == "2025-01-10T12:05:00+00:00"
    assert body["meta"]["generated_at"] == "2025-01-10T12:05:00+00:00"
    assert body["meta"]["generated_at_period_seconds"] == 300


@pytest.mark.parametrize("horizon", ["73", "-1", "soon"])
def test_forecast_rejects_bad_horizons(sim: Sim, horizon: str) -> None:
    assert sim.forecast(horizon_hours=horizon).status_code == 422


def test_my_access_lists_the_plan_in_the_documented_shape(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(plan_regions=FREE_PLAN_REGIONS)
    body = sim.get("/v3/my-access", signal_type="co2_moer").json()
    [signal_type] = body["signal_types"]
    assert signal_type["signal_type"] == "co2_moer"
    [region] = signal_type["regions"]
    assert {key: region[key] for key in ("region", "parent", "data_point_period_seconds")} == {
        "region": "CAISO_NORTH",
        "parent": "CAISO",
        "data_point_period_seconds": 300,
    }
    assert [endpoint["endpoint"] for endpoint in region["endpoints"]] == ["v3/forecast", "v3/historical"]
    historical_model = region["endpoints"][1]["models"][0]
    assert historical_model["model"] == "2023-03-01"
    assert historical_model["type"] == "binned_regression"
    assert datetime.fromisoformat(historical_model["data_start"]) < datetime(2025, 1, 1)  # noqa: DTZ001 - data_start is a naive date-time in WattTime's shape


def test_my_access_without_a_plan_limit_lists_the_catalogue(sim: Sim) -> None:
    body = sim.get("/v3/my-access").json()
    assert [entry["signal_type"] for entry in body["signal_types"]] == ["co2_moer", "co2_aoer", "health_damage"]
    assert [region["region"] for region in body["signal_types"][0]["regions"]] == list(REGIONS)


def test_synthetic_regions_are_served_beside_the_catalogue_and_listed(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(synthetic_regions=3)
    listed = [region["region"] for region in sim.get("/v3/my-access").json()["signal_types"][0]["regions"]]
    assert listed == [*REGIONS, "SYNTH_000", "SYNTH_001", "SYNTH_002"]
    response = sim.historical(region="SYNTH_002")
    assert response.status_code == 200 and len(response.json()["data"]) == 5
    assert sim.historical(region="SYNTH_003").status_code == 400


# --- /register ------------------------------------------------------------------------------


@pytest.mark.parametrize("password", ["Sh0rt!", "no-digits-here!", "12345678!", "NoSpecial123"])
def test_register_rejects_weak_passwords(sim: Sim, password: str) -> None:
    response = sim.client.post("/register", json={"username": "ann", "password": password, "email": "a@example.org"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "password"]


def test_registered_account_can_log_in_with_the_free_plan(sim: Sim) -> None:
    account = {"username": "ann", "password": "Str0ng-enough", "email": "ann@example.org"}
    created = sim.client.post("/register", json=account)
    assert created.json() == {"ok": "User created", "user": "ann"}
    assert sim.client.post("/register", json=account).json() == {
        "error": "That username is taken. Please choose another."
    }
    sim.token = sim.login("ann", "Str0ng-enough").json()["token"]
    assert sim.historical(region="CAISO_NORTH").status_code == 200
    assert sim.historical(region="PJM_NJ").status_code == 403


def test_register_requires_its_fields(sim: Sim) -> None:
    response = sim.client.post("/register", json={"username": "ann"})
    assert response.status_code == 422
    assert [item["loc"][1] for item in response.json()["detail"]] == ["password", "email"]


# --- faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 400, 404, 422])
def test_status_fault_replies_once_with_a_json_error(sim: Sim, status: int) -> None:
    sim.login()
    sim.server.state.inject(Fault("status", status=status, retry_after=7))
    response = sim.historical()
    assert response.status_code == status
    assert set(response.json()) >= {"error", "message"}
    assert response.headers["retry-after"] == "7"
    assert sim.historical().status_code == 200


def test_fault_count_and_path_select_the_affected_requests(sim: Sim) -> None:
    sim.server.state.inject(Fault("status", status=503, count=2, path="/v3/forecast"))
    assert sim.historical().status_code == 200
    assert [sim.forecast().status_code for _ in range(3)] == [503, 503, 200]


def test_path_specific_fault_can_target_login(sim: Sim) -> None:
    sim.server.state.inject(Fault("status", status=500, path="/login"))
    assert sim.login().status_code == 500
    assert sim.login().status_code == 200


def test_unauthorized_fault_looks_like_an_expired_token(sim: Sim) -> None:
    sim.login()
    sim.server.state.inject(Fault("unauthorized"))
    assert sim.historical().status_code == 401
    assert sim.historical().status_code == 200


def test_invalid_scope_fault_carries_the_plan_message(sim: Sim) -> None:
    sim.server.state.inject(Fault("invalid_scope"))
    response = sim.historical()
    assert response.status_code == 403
    assert "free access to CAISO_NORTH" in response.json()["message"]


def test_html_fault_comes_from_cloudfront(sim: Sim) -> None:
    sim.server.state.inject(Fault("html"))
    response = sim.historical()
    assert response.status_code == 403
    assert response.headers["content-type"] == "text/html"
    assert response.headers["server"] == "CloudFront"
    assert response.headers["x-cache"] == "Error from cloudfront"
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_malformed_json_fault_is_a_200_with_a_broken_body(sim: Sim) -> None:
    sim.server.state.inject(Fault("malformed_json"))
    response = sim.historical()
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_slow_fault_delays_then_answers(sim: Sim) -> None:
    sim.login()
    sim.server.state.inject(Fault("slow", delay_seconds=0.3))
    began = time.perf_counter()
    response = sim.historical()
    assert time.perf_counter() - began >= 0.3
    assert response.status_code == 200


def test_latency_applies_to_every_reply(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(latency_seconds=0.2)
    began = time.perf_counter()
    assert sim.login().status_code == 200
    assert time.perf_counter() - began >= 0.2


@pytest.mark.parametrize(
    ("kind", "error"),
    [("reset", httpx.TransportError), ("truncated", httpx.RemoteProtocolError)],
    ids=["reset-without-reply", "truncated-below-content-length"],
)
def test_connection_faults_break_one_exchange(sim: Sim, kind: str, error: type[Exception]) -> None:
    sim.login()
    sim.server.state.inject(Fault(kind))
    with pytest.raises(error):
        sim.historical()
    assert sim.historical().status_code == 200


FIVE_POINTS = [f"2025-01-01T00:{minute:02d}:00+00:00" for minute in range(0, 21, 5)]


DATA_FAULT_CHECKS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "nulls": lambda body: [point["value"] for point in body["data"]].count(None) == 1,
    "out_of_range": lambda body: (body["data"][0]["value"], body["data"][-1]["value"]) == (99999.0, -5.0),
    "duplicates": lambda body: (
        point_times(body) == [*FIVE_POINTS[:3], *FIVE_POINTS[2:]] and body["data"][2] == body["data"][3]
    ),
    "conflicting_duplicates": lambda body: (
        point_times(body) == [*FIVE_POINTS[:3], *FIVE_POINTS[2:]]
        and body["data"][3]["value"] == body["data"][2]["value"] + 1.0
    ),
    "wrong_units": lambda body: body["meta"]["units"] == "percentile",
    "model_date": lambda body: body["meta"]["model"]["date"] == "2024-06-01",
    "outside_window": lambda body: point_times(body) == [*FIVE_POINTS, "2025-01-01T00:25:00+00:00"],
    "empty": lambda body: body["data"] == [],
    "non_numeric": lambda body: body["data"][2]["value"] == "n/a",
    "missing_point": lambda body: point_times(body) == FIVE_POINTS[:2] + FIVE_POINTS[3:],
}


@pytest.mark.parametrize("kind", sorted(DATA_FAULT_CHECKS))
def test_data_fault_damages_one_historical_reply(sim: Sim, kind: str) -> None:
    clean = sim.historical().json()
    assert point_times(clean) == FIVE_POINTS
    sim.server.state.inject(Fault(kind))
    damaged = sim.historical()
    assert damaged.status_code == 200
    assert DATA_FAULT_CHECKS[kind](damaged.json())
    assert sim.historical().json() == clean


def test_data_fault_applies_to_forecast_too(sim: Sim) -> None:
    sim.server.state.inject(Fault("empty"))
    assert sim.forecast().json()["data"] == []


def test_data_fault_waits_for_a_successful_data_reply(sim: Sim) -> None:
    sim.server.state.inject(Fault("empty"))
    assert sim.historical(region="XYZ").status_code == 400
    assert sim.get("/v3/my-access").status_code == 200
    assert sim.historical().json()["data"] == []


@pytest.mark.parametrize(
    "arguments",
    [{"kind": "explode"}, {"kind": "status"}, {"kind": "reset", "status": 500}, {"kind": "empty", "count": 0}],
)
def test_invalid_faults_are_refused(arguments: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Fault(**arguments)


# --- control endpoints, statistics, transport ---------------------------------------------------


def test_control_endpoints_drive_the_simulator_over_http(sim: Sim) -> None:
    assert sim.client.post("/_simulator/faults", json={"kind": "status", "status": 503}).status_code == 200
    assert sim.historical().status_code == 503
    sim.client.post("/_simulator/faults", json={"kind": "status", "status": 502})
    assert sim.client.delete("/_simulator/faults").status_code == 200
    assert sim.historical().status_code == 200
    sim.client.post("/_simulator/expire-tokens")
    assert sim.historical().status_code == 401
    stats = sim.client.get("/_simulator/stats").json()
    assert stats["statuses"] == {"200": 2, "503": 1, "401": 1}
    assert stats["faults_applied"] == {"status": 1}


def test_control_endpoint_rejects_an_invalid_fault(sim: Sim) -> None:
    response = sim.client.post("/_simulator/faults", json={"kind": "explode"})
    assert response.status_code == 422


def test_stats_record_each_historical_query(sim: Sim) -> None:
    sim.historical(end="2025-01-01T00:10:00+00:00")
    sim.forecast()
    stats = sim.server.state.stats()
    assert stats["logins"] == 1
    assert stats["requests"] == {"/login": 1, "/v3/historical": 1, "/v3/forecast": 1}
    assert stats["historical_queries"] == [
        {"region": "CAISO_NORTH", "signal_type": "co2_moer", "start": DAY_START, "end": "2025-01-01T00:10:00+00:00"}
    ]
    sim.server.state.reset_stats()
    assert sim.server.state.stats()["historical_queries"] == []


def test_stats_count_arrivals_and_requests_in_flight(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(latency_seconds=0.2)  # all three requests are being served at once
    token = sim.login().json()["token"]
    before = time.monotonic()

    def historical(_: int) -> int:
        response = sim.client.get(
            "/v3/historical",
            params={"region": "CAISO_NORTH", "signal_type": "co2_moer", "start": DAY_START, "end": DAY_START},
            headers={"Authorization": f"Bearer {token}"},
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=3) as pool:
        assert list(pool.map(historical, range(3))) == [200] * 3
    stats = sim.server.state.stats()
    assert stats["in_flight_peak"] == 3
    assert len(stats["arrivals"]["/login"]) == 1
    assert len(stats["arrivals"]["/v3/historical"]) == 3
    assert all(before <= arrival <= time.monotonic() for arrival in stats["arrivals"]["/v3/historical"])


def test_unknown_paths_and_methods(sim: Sim) -> None:
    assert sim.client.get("/v3/nothing-here").status_code == 404
    assert sim.client.post("/login").status_code == 405


def test_keep_alive_reuses_one_connection(sim: Sim) -> None:
    def client_port(response: httpx.Response) -> int:
        return int(response.extensions["network_stream"].get_extra_info("client_addr")[1])

    first, second = sim.login(), sim.historical()
    assert client_port(first) == client_port(second)


@pytest.mark.parametrize(
    "launcher",
    [
        [sys.executable, "-m", "carbon_pipeline.watttime.simulator"],
        [str(Path(sys.executable).parent / "carbon-pipeline"), "simulator"],
    ],
    ids=["module", "carbon-pipeline"],
)
def test_runs_standalone_and_prints_no_password(launcher: list[str]) -> None:
    command = [*launcher, "--port", "0", "--free-plan"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as process:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        try:
            base_url = first_line.split()[-1]
            response = httpx.get(f"{base_url}/login", auth=(SIMULATOR_USERNAME, SIMULATOR_PASSWORD), timeout=5)
            assert response.status_code == 200
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=10)
        output = first_line + process.stdout.read()
    assert process.returncode == 0
    assert f"username: {SIMULATOR_USERNAME}" in output
    assert SIMULATOR_PASSWORD not in output


def test_standalone_rate_limits_are_options() -> None:
    command = [sys.executable, "-m", "carbon_pipeline.watttime.simulator", "--port", "0"]
    command += ["--data-rate-limit", "1", "--login-rate-limit", "1"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as process:
        assert process.stdout is not None
        try:
            base_url = process.stdout.readline().split()[-1]
            with httpx.Client(base_url=base_url, timeout=5) as client:
                logins = [client.get("/login", auth=(SIMULATOR_USERNAME, SIMULATOR_PASSWORD)) for _ in range(2)]
                assert [login.status_code for login in logins] == [200, 429]
                params = {"region": "CAISO_NORTH", "signal_type": "co2_moer", "start": DAY_START, "end": DAY_START}
                headers = {"Authorization": f"Bearer {logins[0].json()['token']}"}
                statuses = [client.get("/v3/historical", params=params, headers=headers).status_code for _ in range(2)]
                assert statuses == [200, 429]
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=10)
    assert process.returncode == 0
