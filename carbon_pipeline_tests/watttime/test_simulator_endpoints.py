"""The WattTime simulator's /v3/forecast, /v3/my-access and /register over loopback HTTP."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from carbon_pipeline.watttime.simulator import FREE_PLAN_REGIONS, REGIONS
from carbon_pipeline_tests.support.simulator_session import Sim


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
    sim = make_sim(plan_regions=FREE_PLAN_REGIONS, index_within_plan=True)
    body = sim.get("/v3/my-access", signal_type="co2_moer").json()
    [signal_type] = body["signal_types"]
    assert signal_type["signal_type"] == "co2_moer"
    [region] = signal_type["regions"]
    assert {key: region[key] for key in ("region", "parent", "data_point_period_seconds")} == {
        "region": "CAISO_NORTH",
        "parent": "CAISO",
        "data_point_period_seconds": 300,
    }
    endpoints = [endpoint["endpoint"] for endpoint in region["endpoints"]]
    assert endpoints == ["v3/forecast", "v3/historical", "v3/signal-index"]
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
