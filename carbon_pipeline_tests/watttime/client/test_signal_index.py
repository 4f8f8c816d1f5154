"""The WattTime client's `signal_index` over loopback HTTP against the simulator: reply, retries, typed errors."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from carbon_pipeline.watttime.client import WattTimeClient
from carbon_pipeline.watttime.errors import WattTimePlanError, WattTimeUnavailableError
from carbon_pipeline.watttime.simulator import FREE_PLAN_REGIONS, Fault, SimulatorServer
from carbon_pipeline_tests.support.simulator_session import FakeClock

INDEX = "/v3/signal-index"


@pytest.fixture
def clock() -> FakeClock:
    clock = FakeClock()
    clock.advance(7 * 60)
    return clock


@pytest.fixture
def indexed(start_simulator: Callable[..., SimulatorServer], clock: FakeClock) -> SimulatorServer:
    return start_simulator(clock=clock, plan_regions=FREE_PLAN_REGIONS, index_within_plan=True)


def test_the_reply_is_typed_with_a_utc_point_time_and_the_percentile_of_the_forecast(
    indexed: SimulatorServer, make_client: Callable[..., WattTimeClient]
) -> None:
    client = make_client(indexed.base_url)
    forecast = client.forecast("CAISO_NORTH", 24).frame["value"].tolist()
    expected = round(100 * sum(value < forecast[0] for value in forecast[1:]) / (len(forecast) - 1), 1)

    index = client.signal_index("CAISO_NORTH")

    assert index.point_time == datetime(2025, 1, 10, 12, 5, tzinfo=UTC)
    assert index.point_time.utcoffset() == timedelta(0)
    assert index.value == expected
    assert (index.region, index.signal_type, index.units) == ("CAISO_NORTH", "co2_moer", "percentile")
    assert (index.period_seconds, index.model_date) == (300, "2023-03-01")
    assert index.request_id


def test_the_signal_type_asked_for_is_sent(sim: SimulatorServer, make_client: Callable[..., WattTimeClient]) -> None:
    """CAISO is a co2_aoer region only: the simulator answers it only if co2_aoer was sent."""
    index = make_client().signal_index("CAISO", "co2_aoer")
    assert index.signal_type == "co2_aoer" and 0 <= index.value <= 100


def test_server_errors_are_retried_under_the_one_retry_policy(
    sim: SimulatorServer, make_client: Callable[..., WattTimeClient]
) -> None:
    sim.state.inject(Fault(kind="status", status=500, path=INDEX, count=2))
    assert 0 <= make_client().signal_index("PJM_DC").value <= 100
    assert sim.state.stats()["statuses"][500] == 2
    sim.state.inject(Fault(kind="status", status=503, path=INDEX, count=10))
    with pytest.raises(WattTimeUnavailableError, match="GET /v3/signal-index, region PJM_DC"):
        make_client(max_attempts=2).signal_index("PJM_DC")


def test_a_region_outside_the_index_access_is_a_plan_error_not_retried(
    indexed: SimulatorServer, make_client: Callable[..., WattTimeClient]
) -> None:
    with pytest.raises(WattTimePlanError) as raised:
        make_client(indexed.base_url).signal_index("PJM_DC")
    assert "GET /v3/signal-index, region PJM_DC" in str(raised.value) and raised.value.request_id
    assert indexed.state.stats()["statuses"][403] == 1


def test_two_points_or_a_null_reach_the_caller_whole(
    sim: SimulatorServer, make_client: Callable[..., WattTimeClient]
) -> None:
    client = make_client()
    sim.state.inject(Fault(kind="duplicates", path=INDEX))
    doubled = client.signal_index("CAISO_NORTH")
    assert len(doubled.frame) == 2
    with pytest.raises(ValueError, match="CAISO_NORTH has 2 points, not one"):
        _ = doubled.value
    sim.state.inject(Fault(kind="nulls", path=INDEX))
    nulled = client.signal_index("CAISO_NORTH")
    assert math.isnan(nulled.value) and nulled.frame["raw_value"].tolist() == [None]
