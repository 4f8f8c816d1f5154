"""The simulator's forecasts, models, signals and locations, driven over real loopback HTTP."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from carbon_pipeline.watttime.simulator import FREE_PLAN_REGIONS, REGIONS, Fault
from carbon_pipeline_tests.support.simulator_session import NOW, Sim

DAY = ("2025-01-08T00:00:00+00:00", "2025-01-08T23:59:59+00:00")
# Lead-time buckets of the accuracy the pipeline measures, in minutes: 0-1 h, 1-6 h, 6-24 h, 24-72 h.
BUCKETS = ((0, 60), (60, 360), (360, 1440), (1440, 4320))


def point_times(points: list[dict[str, Any]]) -> list[datetime]:
    return [datetime.fromisoformat(point["point_time"]) for point in points]


def values(points: list[dict[str, Any]]) -> list[Any]:
    return [point["value"] for point in points]


def published(sim: Sim, start: str, end: str, **params: Any) -> dict[datetime, float]:
    """What /v3/historical published for [start, end], by point time."""
    body = sim.historical(start, end, **params).json()
    return dict(zip(point_times(body["data"]), values(body["data"]), strict=True))


# --- /v3/forecast/historical ------------------------------------------------------------------


def test_a_day_of_issues_is_288_forecasts_of_288_points_each_starting_at_its_issue(
    make_sim: Callable[..., Sim],
) -> None:
    body = make_sim().historical_forecast(*DAY).json()
    issued = [datetime.fromisoformat(item["generated_at"]) for item in body["data"]]
    assert issued == [datetime(2025, 1, 8, tzinfo=UTC) + timedelta(minutes=5 * n) for n in range(288)]
    for item in body["data"]:
        times = point_times(item["forecast"])
        assert len(times) == 288
        assert times[0] == datetime.fromisoformat(item["generated_at"])
        assert all(later - earlier == timedelta(minutes=5) for earlier, later in itertools.pairwise(times))
    assert body["meta"] == {
        "data_point_period_seconds": 300,
        "region": "CAISO_NORTH",
        "signal_type": "co2_moer",
        "units": "lbs_co2_per_mwh",
        "warnings": [],
        "model": {"date": "2023-03-01"},
        "generated_at_period_seconds": 300,
    }


@pytest.mark.parametrize(("horizon", "count"), [(72, 864), (1, 12), (0, 1)])
def test_historical_forecast_points_follow_the_horizon(make_sim: Callable[..., Sim], horizon: int, count: int) -> None:
    body = make_sim().historical_forecast(DAY[0], DAY[0], horizon_hours=horizon).json()
    [item] = body["data"]
    assert len(item["forecast"]) == count


def test_the_archive_holds_what_the_live_forecast_said(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim()
    sim.clock.advance(7 * 60)
    live = sim.forecast().json()
    sim.clock.advance(20 * 60)  # four issues later, within the token's life
    archived = sim.historical_forecast(live["meta"]["generated_at"], live["meta"]["generated_at"]).json()
    [item] = archived["data"]
    assert item["generated_at"] == live["meta"]["generated_at"] == "2025-01-10T12:05:00+00:00"
    assert item["forecast"] == live["data"]


def test_forecasts_are_the_same_after_a_restart(make_sim: Callable[..., Sim]) -> None:
    first, second = make_sim(), make_sim()
    window = ("2025-01-08T06:00:00+00:00", "2025-01-08T07:00:00+00:00")
    assert first.historical_forecast(*window).json() == second.historical_forecast(*window).json()
    assert first.forecast().json()["data"] == second.forecast().json()["data"]


def test_forecast_error_is_unbiased_and_grows_with_the_lead_time(make_sim: Callable[..., Sim]) -> None:
    """Forecasts issued on 2025-01-05, 72 h ahead, against what /v3/historical later published."""
    sim = make_sim(publication_lag_seconds=0)
    forecasts = sim.historical_forecast("2025-01-05T00:00:00+00:00", "2025-01-05T23:55:00+00:00", horizon_hours=72)
    truth = published(sim, "2025-01-05T00:00:00+00:00", "2025-01-09T00:00:00+00:00")
    errors: list[list[float]] = [[] for _ in BUCKETS]
    for item in forecasts.json()["data"][::6]:  # every half hour keeps it quick and still covers the day
        issued = datetime.fromisoformat(item["generated_at"])
        for moment, value in zip(point_times(item["forecast"]), values(item["forecast"]), strict=True):
            lead_minutes = (moment - issued) / timedelta(minutes=1)
            bucket = next(index for index, (low, high) in enumerate(BUCKETS) if low <= lead_minutes < high)
            errors[bucket].append(value - truth[moment])
    mean_absolute = [statistics.fmean(abs(error) for error in bucket) for bucket in errors]
    assert mean_absolute == sorted(mean_absolute) and mean_absolute[0] > 0
    assert mean_absolute[-1] > 4 * mean_absolute[0]
    assert all(abs(statistics.fmean(bucket)) < 0.1 * mean for bucket, mean in zip(errors, mean_absolute, strict=True))


def test_the_current_period_is_forecast_close_to_what_is_published(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(publication_lag_seconds=0)
    [first, *_] = sim.forecast().json()["data"]
    truth = published(sim, first["point_time"], first["point_time"])
    assert first["value"] != truth[datetime.fromisoformat(first["point_time"])]
    assert abs(first["value"] / truth[datetime.fromisoformat(first["point_time"])] - 1) < 0.02


def test_issues_are_limited_to_24_hours_per_call(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim()
    assert sim.historical_forecast("2025-01-08T00:00:00+00:00", "2025-01-09T00:00:00+00:00").status_code == 200
    too_long = sim.historical_forecast("2025-01-08T00:00:00+00:00", "2025-01-09T00:05:00+00:00")
    assert too_long.status_code == 400
    assert "24 hours" in too_long.json()["message"]


def test_issues_after_now_do_not_exist_yet(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim()  # the clock says 2025-01-10 12:00
    body = sim.historical_forecast("2025-01-10T11:50:00+00:00", "2025-01-10T13:00:00+00:00").json()
    assert [item["generated_at"] for item in body["data"]] == [
        "2025-01-10T11:50:00+00:00",
        "2025-01-10T11:55:00+00:00",
        "2025-01-10T12:00:00+00:00",
    ]
    assert sim.historical_forecast("2025-02-01T00:00:00+00:00", "2025-02-01T01:00:00+00:00").json()["data"] == []


def test_issues_before_the_archive_are_a_404(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(forecast_archive_start=datetime(2025, 1, 8, 12, tzinfo=UTC))
    gone = sim.historical_forecast("2025-01-07T00:00:00+00:00", "2025-01-07T23:55:00+00:00")
    assert gone.status_code == 404
    assert gone.json()["message"] == "No historical forecast data is available for the requested time range"
    straddling = sim.historical_forecast("2025-01-08T11:50:00+00:00", "2025-01-08T12:05:00+00:00").json()
    assert [item["generated_at"][11:16] for item in straddling["data"]] == ["12:00", "12:05"]


# --- models and signals -----------------------------------------------------------------------


def test_the_newest_model_is_the_default_and_an_older_one_can_be_pinned(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim()
    newest, pinned = sim.forecast(), sim.forecast(model="2022-10-01")
    assert newest.json()["meta"]["model"] == {"date": "2023-03-01"}
    assert pinned.json()["meta"]["model"] == {"date": "2022-10-01"}
    assert values(newest.json()["data"]) != values(pinned.json()["data"])
    assert sim.forecast(model="2023-03-01").json() == newest.json()
    old_history = sim.historical(model="2022-10-01").json()
    assert old_history["meta"]["model"] == {"date": "2022-10-01", "type": "binned_regression"}
    assert values(old_history["data"]) != values(sim.historical().json()["data"])
    assert sim.historical_forecast(DAY[0], DAY[0], model="2021-01-01").status_code == 400


def test_my_access_lists_every_model_with_its_type_on_every_endpoint(make_sim: Callable[..., Sim]) -> None:
    body = make_sim().get("/v3/my-access", signal_type="co2_moer", region="PSCO").json()
    [region] = body["signal_types"][0]["regions"]
    endpoints = [endpoint["endpoint"] for endpoint in region["endpoints"]]
    assert endpoints == ["v3/forecast", "v3/historical", "v3/signal-index"]
    for endpoint in region["endpoints"]:
        assert [model["model"] for model in endpoint["models"]] == ["2023-03-01", "2022-10-01"]
        assert all(model["type"] == "binned_regression" for model in endpoint["models"])


def test_each_signal_type_has_its_own_regions(make_sim: Callable[..., Sim]) -> None:
    listed = {
        entry["signal_type"]: [region["region"] for region in entry["regions"]]
        for entry in make_sim().get("/v3/my-access").json()["signal_types"]
    }
    assert listed["co2_moer"] == list(REGIONS)
    assert "CAISO" in listed["co2_aoer"] and "CAISO_NORTH" not in listed["co2_aoer"]
    assert "CAISO_NORTH" in listed["health_damage"] and "DE" not in listed["health_damage"]


def test_the_free_plan_lists_moer_and_health_damage_only_when_the_index_follows_the_plan(
    make_sim: Callable[..., Sim],
) -> None:
    body = make_sim(plan_regions=FREE_PLAN_REGIONS, index_within_plan=True).get("/v3/my-access").json()
    assert [(entry["signal_type"], [r["region"] for r in entry["regions"]]) for entry in body["signal_types"]] == [
        ("co2_moer", ["CAISO_NORTH"]),
        ("health_damage", ["CAISO_NORTH"]),
    ]


def test_aoer_and_health_damage_are_series_of_their_own(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim()
    window = ("2025-01-01T00:00:00+00:00", "2025-01-01T23:00:00+00:00")
    moer = published(sim, *window)
    damage = sim.historical(*window, signal_type="health_damage")
    assert damage.json()["meta"]["units"] == "usd_per_mwh"
    damage_values = values(damage.json()["data"])
    assert len(damage_values) == len(moer) and all(0 < value < 200 for value in damage_values)
    aoer = sim.historical(*window, region="CAISO", signal_type="co2_aoer").json()
    assert aoer["meta"]["data_point_period_seconds"] == 3600
    hourly_moer = [moer[moment] for moment in point_times(aoer["data"])]
    ratios = [average / marginal for average, marginal in zip(values(aoer["data"]), hourly_moer, strict=True)]
    assert len(set(ratios)) == len(ratios), "AOER is not a rescaled MOER"
    assert sim.historical(*window, region="CAISO_NORTH", signal_type="co2_aoer").status_code == 400
    aoer_forecast = sim.forecast(region="CAISO", signal_type="co2_aoer").json()
    assert len(aoer_forecast["data"]) == 24


# --- forecast access, faults ------------------------------------------------------------------


def test_a_region_without_forecast_access_is_a_403_on_both_forecast_endpoints(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(forecast_regions=frozenset({"CAISO_NORTH"}))
    assert sim.forecast(region="PJM_DC").status_code == 403
    assert sim.historical_forecast(*DAY, region="PJM_DC").json()["error"] == "INVALID_SCOPE"
    assert sim.historical(region="PJM_DC").status_code == 200
    assert sim.forecast(region="CAISO_NORTH").status_code == 200
    [region] = sim.get("/v3/my-access", signal_type="co2_moer", region="PJM_DC").json()["signal_types"][0]["regions"]
    assert [endpoint["endpoint"] for endpoint in region["endpoints"]] == ["v3/historical", "v3/signal-index"]


FORECAST_FAULT_CHECKS: dict[str, Callable[[list[dict[str, Any]]], bool]] = {
    "short_horizon": lambda points: len(points) == 6,
    "missing_point": lambda points: len(points) == 11 and points[6]["point_time"].endswith("12:35:00+00:00"),
    "nulls": lambda points: [point["value"] is None for point in points[:6]] == [True] + [False] * 4 + [True],
    "out_of_range": lambda points: (points[0]["value"], points[-1]["value"]) == (99999.0, -5.0),
    "stale_generated_at": lambda points: points[0]["point_time"] == "2025-01-10T11:00:00+00:00",
}


@pytest.mark.parametrize("kind", sorted(FORECAST_FAULT_CHECKS))
def test_forecast_faults_damage_the_live_forecast_once(make_sim: Callable[..., Sim], kind: str) -> None:
    sim = make_sim()
    clean = sim.forecast(horizon_hours=1).json()
    sim.server.state.inject(Fault(kind))
    damaged = sim.forecast(horizon_hours=1).json()
    assert FORECAST_FAULT_CHECKS[kind](damaged["data"])
    stale = kind == "stale_generated_at"
    assert damaged["meta"]["generated_at"] == ("2025-01-10T11:00:00+00:00" if stale else NOW.isoformat())
    assert sim.forecast(horizon_hours=1).json() == clean


@pytest.mark.parametrize("kind", sorted(FORECAST_FAULT_CHECKS))
def test_forecast_faults_damage_every_forecast_of_an_archive_reply(make_sim: Callable[..., Sim], kind: str) -> None:
    sim = make_sim()
    sim.server.state.inject(Fault(kind, path="/v3/forecast/historical"))
    window = (NOW.isoformat(), NOW.isoformat())  # the issue the live forecast checks see
    [item] = sim.historical_forecast(*window, horizon_hours=1).json()["data"]
    assert FORECAST_FAULT_CHECKS[kind](item["forecast"])
    assert sim.historical_forecast(*window, horizon_hours=1).json()["data"][0]["generated_at"] == window[0]


def test_wrong_units_and_empty_reach_the_archive_too(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim()
    sim.server.state.inject(Fault("wrong_units", path="/v3/forecast/historical"))
    assert sim.historical_forecast(*DAY).json()["meta"]["units"] == "percentile"
    sim.server.state.inject(Fault("empty", path="/v3/forecast/historical"))
    assert sim.historical_forecast(*DAY).json()["data"] == []


def test_forecast_only_faults_leave_history_alone(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim()
    clean = sim.historical().json()
    sim.server.state.inject(Fault("short_horizon"))
    assert sim.historical().json() == clean
    assert len(sim.forecast().json()["data"]) == 144


def test_a_fault_for_one_region_leaves_the_others_alone(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim()
    sim.server.state.inject(Fault("invalid_scope", path="/v3/forecast", region="PJM_DC", count=5))
    sim.server.state.inject(Fault("short_horizon", region="DE"))
    assert sim.forecast(region="CAISO_NORTH").status_code == 200
    assert len(sim.forecast(region="CAISO_NORTH").json()["data"]) == 288
    assert sim.forecast(region="PJM_DC").json()["error"] == "INVALID_SCOPE"
    assert len(sim.forecast(region="DE").json()["data"]) == 144


def test_the_archive_fault_is_a_404_with_the_archive_message(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim()
    sim.server.state.inject(Fault("outside_archive", path="/v3/forecast/historical"))
    response = sim.historical_forecast(*DAY)
    assert response.status_code == 404 and response.json()["error"] == "NOT_FOUND"
    assert sim.historical_forecast(*DAY).status_code == 200


def test_stats_record_each_historical_forecast_query(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim()
    sim.historical_forecast(*DAY, horizon_hours=24)
    assert sim.server.state.stats()["forecast_historical_queries"] == [
        {"region": "CAISO_NORTH", "signal_type": "co2_moer", "start": DAY[0], "end": DAY[1], "horizon_hours": "24"}
    ]


# --- /v3/region-from-loc ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("latitude", "longitude", "signal_type", "region", "full_name"),
    [
        (42.372, -72.519, "co2_moer", "ISONE_WCMA", "ISONE Western/Central Massachusetts"),
        (39.7522, -105.0, "co2_moer", "PSCO", "Public Service Co of Colorado"),
        (42.372, -72.519, "co2_aoer", "ISONE", "ISO New England"),
        (52.52, 13.405, "co2_moer", "DE", "Germany"),
        (53.35, -6.26, "co2_moer", "IE", "Ireland"),
    ],
)
def test_region_from_loc_finds_the_region_serving_a_point(
    make_sim: Callable[..., Sim], latitude: float, longitude: float, signal_type: str, region: str, full_name: str
) -> None:
    response = make_sim().get("/v3/region-from-loc", latitude=latitude, longitude=longitude, signal_type=signal_type)
    assert response.json() == {"region": region, "region_full_name": full_name, "signal_type": signal_type}


def test_a_point_without_coverage_is_a_404_naming_it(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim()
    response = sim.get("/v3/region-from-loc", latitude="0", longitude="0", signal_type="co2_moer")
    assert response.status_code == 404
    assert response.json() == {
        "error": "No coverage available for these coordinates and signal_type",
        "latitude": "0",
        "longitude": "0",
        "signal_type": "co2_moer",
    }
    berlin = {"latitude": 52.52, "longitude": 13.405}
    assert sim.get("/v3/region-from-loc", **berlin, signal_type="health_damage").status_code == 404


def test_region_from_loc_checks_its_parameters_and_the_token(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim()
    missing = sim.get("/v3/region-from-loc", latitude=42.0)
    assert missing.status_code == 422
    assert [item["loc"] for item in missing.json()["detail"]] == [["query", "longitude"], ["query", "signal_type"]]
    assert sim.get("/v3/region-from-loc", latitude="north", longitude=0, signal_type="co2_moer").status_code == 422
    assert sim.get("/v3/region-from-loc", latitude=42, longitude=-72, signal_type="co2").status_code == 422
    point = {"latitude": 42, "longitude": -72, "signal_type": "co2_moer"}
    assert sim.client.get("/v3/region-from-loc", params=point).status_code == 401
