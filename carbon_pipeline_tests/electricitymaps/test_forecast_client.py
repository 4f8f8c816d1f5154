"""The Electricity Maps client's forecast against the simulator over loopback HTTP, and its reply refused whole."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import httpx
import pytest

from carbon_pipeline.electricitymaps.endpoints import FORECAST_PATH, Query
from carbon_pipeline.electricitymaps.errors import ElectricityMapsPlanError, ElectricityMapsResponseError
from carbon_pipeline.electricitymaps.replies import parse_forecast
from carbon_pipeline.electricitymaps.simulator import FREE_TOKEN, PAID_TOKEN, ElectricityMapsSimulator
from carbon_pipeline.electricitymaps.simulator.values import ZONES, intensity
from carbon_pipeline_tests.electricitymaps.conftest import ClientFactory

HOUR = timedelta(hours=1)
QUERY = Query(FORECAST_PATH, "DE")
START = datetime(2025, 1, 1, tzinfo=UTC)


def _reply(times: list[datetime], values: list[object], updated: object = "2025-01-01T00:00:00Z") -> dict[str, object]:
    points = [{"carbonIntensity": value, "datetime": t.isoformat()} for t, value in zip(times, values, strict=True)]
    return {"zone": "DE", "forecast": points, "updatedAt": updated}


def test_a_paid_token_reads_the_hours_asked_for_with_the_simulators_values(
    sim: ElectricityMapsSimulator, make_client: ClientFactory
) -> None:
    forecast = make_client(PAID_TOKEN, emission_factor_type="direct").forecast("FR", 30)

    assert len(forecast.points) == 30
    assert all(later.time - earlier.time == HOUR for earlier, later in pairwise(forecast.points))
    assert forecast.points[0].time - forecast.updated_at == HOUR
    assert forecast.updated_at <= datetime.now(UTC) < forecast.updated_at + HOUR
    for point in forecast.points:
        assert point.carbon_intensity == intensity("FR", ZONES["FR"], point.time, "direct")
        assert point.time.tzinfo is UTC
    assert sim.state.stats()["requests"] == {FORECAST_PATH: 1}


def test_a_free_token_is_refused_by_its_plan_naming_the_zone(make_client: ClientFactory) -> None:
    with pytest.raises(ElectricityMapsPlanError, match=f"GET {FORECAST_PATH}, zone DE: HTTP 403") as caught:
        make_client(FREE_TOKEN).forecast("DE", 24)
    assert caught.value.zone == "DE"
    assert not caught.value.retryable


def test_a_null_in_the_forecast_refuses_it_naming_zone_and_time(
    sim: ElectricityMapsSimulator, make_client: ClientFactory
) -> None:
    httpx.post(f"{sim.base_url}/_simulator/faults", json={"kind": "nulls", "path": FORECAST_PATH}).raise_for_status()
    with pytest.raises(ElectricityMapsResponseError, match=r"zone DE: point \S+: carbonIntensity None is not a number"):
        make_client(PAID_TOKEN).forecast("DE", 24)


@pytest.mark.parametrize("hours", [0, 73, 1.5, True])
def test_a_horizon_outside_1_to_72_whole_hours_is_refused_before_any_request(
    sim: ElectricityMapsSimulator, make_client: ClientFactory, hours: int
) -> None:
    with pytest.raises(ValueError, match=f"horizon_hours {hours!r} is not a whole number from 1 to 72"):
        make_client(PAID_TOKEN).forecast("DE", hours)
    assert sim.state.stats()["requests"] == {}


@pytest.mark.parametrize(
    ("times", "said"),
    [
        ([START, START + 2 * HOUR], r"point 2025-01-01T02:00:00\+00:00 comes 2:00:00 after the one before, not 1:"),
        ([], "the reply's forecast has no point"),
    ],
)
def test_a_forecast_with_a_gap_or_no_point_is_refused(times: list[datetime], said: str) -> None:
    with pytest.raises(ElectricityMapsResponseError, match=f"zone DE: {said}"):
        parse_forecast(_reply(times, [100.0] * len(times)), QUERY, "lifecycle", HOUR)


@pytest.mark.parametrize("updated", [None, "yesterday", "2025-01-01T00:00:00"])
def test_a_forecast_without_a_zoned_updated_at_is_refused(updated: object) -> None:
    with pytest.raises(ElectricityMapsResponseError, match=f"updatedAt {updated!r} is not an ISO 8601 time"):
        parse_forecast(_reply([START], [100.0], updated), QUERY, "lifecycle", HOUR)
