"""The WattTime simulator's /v3/historical over loopback HTTP: the reply shape, inclusive bounds, publication lag,
request validation and plan scope, and the signal it serves in each region.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from carbon_pipeline.watttime.simulator import FREE_PLAN_REGIONS, REGIONS, moer_value
from carbon_pipeline_tests.support.simulator_session import DAY_START, NOW, Sim, point_times


def values(response: httpx.Response) -> list[Any]:
    return [point["value"] for point in response.json()["data"]]


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
