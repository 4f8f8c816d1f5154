"""The simulator's /v3/signal-index over loopback HTTP: its shape, its percentile, who may read it, its faults."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from carbon_pipeline.watttime.simulator import FREE_PLAN_REGIONS, Fault
from carbon_pipeline_tests.support.simulator_session import Sim

INDEX = "/v3/signal-index"


def endpoints_of(sim: Sim, region: str) -> list[str] | None:
    """The endpoints /v3/my-access lists for a co2_moer region, None when the region is not listed."""
    [signal] = sim.get("/v3/my-access", signal_type="co2_moer").json()["signal_types"]
    listed = {entry["region"]: [item["endpoint"] for item in entry["endpoints"]] for entry in signal["regions"]}
    return listed.get(region)


def test_the_reply_is_one_point_for_the_current_five_minutes_in_percentile(sim: Sim) -> None:
    sim.clock.advance(7 * 60)
    body = sim.get(INDEX, region="PSCO").json()
    [point] = body["data"]
    assert point["point_time"] == "2025-01-10T12:05:00+00:00"
    assert isinstance(point["value"], float) and 0 <= point["value"] <= 100
    assert body["meta"] == {
        "data_point_period_seconds": 300,
        "region": "PSCO",
        "signal_type": "co2_moer",
        "units": "percentile",
        "warnings": [],
        "model": {"date": "2023-03-01"},
    }


@pytest.mark.parametrize("region", ["CAISO_NORTH", "PJM_DC", "IE"])
@pytest.mark.parametrize("minutes", [0, 185, 610, 1080])
def test_the_value_ranks_the_current_moer_among_the_next_24_hours_of_the_forecast(
    sim: Sim, region: str, minutes: int
) -> None:
    sim.clock.advance(minutes * 60)
    forecast = [point["value"] for point in sim.forecast(region=region, horizon_hours=24).json()["data"]]
    current, ahead = forecast[0], forecast[1:]
    expected = round(100 * sum(value < current for value in ahead) / len(ahead), 1)
    [point] = sim.get(INDEX, region=region).json()["data"]
    assert point["value"] == expected


def test_over_a_day_the_index_spans_its_scale(make_sim: Callable[..., Sim]) -> None:
    """Over a day of 5-minute ticks the index must reach both ends of its scale, not hover in the middle."""
    sim = make_sim(token_ttl_seconds=2 * 86_400)
    seen = set()
    for _ in range(288):
        seen.add(sim.get(INDEX, region="CAISO_NORTH").json()["data"][0]["value"])
        sim.clock.advance(300)
    assert min(seen) <= 10.0 and max(seen) >= 90.0


def test_signal_type_defaults_to_co2_moer_and_names_the_series_asked_for(sim: Sim) -> None:
    assert sim.get(INDEX, region="CAISO_NORTH").json()["meta"]["signal_type"] == "co2_moer"
    aoer = sim.get(INDEX, region="CAISO", signal_type="co2_aoer").json()
    assert aoer["meta"]["signal_type"] == "co2_aoer" and aoer["meta"]["units"] == "percentile"
    assert sim.get(INDEX, signal_type="co2_moer").status_code == 422
    assert sim.get(INDEX, region="NOWHERE").status_code == 400


def test_by_default_a_free_account_reads_the_index_of_every_region_and_my_access_says_so(
    make_sim: Callable[..., Sim],
) -> None:
    sim = make_sim(plan_regions=FREE_PLAN_REGIONS)
    assert sim.get(INDEX, region="PJM_DC").status_code == 200
    assert sim.historical(region="PJM_DC").status_code == 403
    assert endpoints_of(sim, "PJM_DC") == ["v3/signal-index"]
    assert endpoints_of(sim, "CAISO_NORTH") == ["v3/forecast", "v3/historical", "v3/signal-index"]


def test_limited_to_the_plan_the_index_elsewhere_is_a_403_and_not_listed(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(plan_regions=FREE_PLAN_REGIONS, index_within_plan=True)
    refused = sim.get(INDEX, region="PJM_DC")
    assert refused.status_code == 403
    assert refused.json()["error"] == "INVALID_SCOPE"
    assert refused.json()["message"].startswith("Invalid scope. You do not have sufficient access to this resource.")
    assert sim.get(INDEX, region="CAISO_NORTH").status_code == 200
    assert endpoints_of(sim, "PJM_DC") is None
    assert endpoints_of(sim, "CAISO_NORTH") == ["v3/forecast", "v3/historical", "v3/signal-index"]


@pytest.mark.parametrize(
    ("kind", "damaged"),
    [
        ("out_of_range", lambda points: [point["value"] for point in points] == [-5.0]),
        ("nulls", lambda points: [point["value"] for point in points] == [None]),
        ("duplicates", lambda points: len(points) == 2 and points[0] == points[1]),
        ("empty", lambda points: points == []),
    ],
)
def test_data_faults_damage_the_one_point(sim: Sim, kind: str, damaged: Callable[[list[object]], bool]) -> None:
    sim.server.state.inject(Fault(kind=kind, path=INDEX))
    assert damaged(sim.get(INDEX, region="CAISO_NORTH").json()["data"])
    assert len(sim.get(INDEX, region="CAISO_NORTH").json()["data"]) == 1


@pytest.mark.parametrize("status", [500, 429])
def test_http_faults_reach_the_index(sim: Sim, status: int) -> None:
    sim.server.state.inject(Fault(kind="status", status=status, path=INDEX))
    assert sim.get(INDEX, region="CAISO_NORTH").status_code == status
    assert sim.get(INDEX, region="CAISO_NORTH").status_code == 200
