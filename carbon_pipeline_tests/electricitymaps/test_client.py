"""The Electricity Maps client against the simulator over loopback HTTP: plans, typed errors naming zone and
range, 429 Retry-After honoured, estimated flags and emission factor types kept, bad values refused whole."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import httpx
import pytest

from carbon_pipeline.electricitymaps.errors import (
    ElectricityMapsAuthError,
    ElectricityMapsPlanError,
    ElectricityMapsRateLimitedError,
    ElectricityMapsResponseError,
    ElectricityMapsUnavailableError,
    ElectricityMapsUnknownZoneError,
)
from carbon_pipeline.electricitymaps.simulator import FREE_TOKEN, PAID_TOKEN, ElectricityMapsSimulator
from carbon_pipeline_tests.electricitymaps.conftest import ClientFactory

DAY = datetime(2025, 1, 1, tzinfo=UTC)
HISTORY = "/carbon-intensity/history"
PAST_RANGE = "/carbon-intensity/past-range"


def _fault(sim: ElectricityMapsSimulator, **fault: object) -> None:
    httpx.post(f"{sim.base_url}/_simulator/faults", json=fault).raise_for_status()


def test_free_token_reads_the_last_24_hours_hourly(make_client: ClientFactory) -> None:
    points = make_client(FREE_TOKEN).history("DE")
    assert len(points) == 24
    assert all(later.time - earlier.time == timedelta(hours=1) for earlier, later in pairwise(points))
    assert points[-1].time > datetime.now(UTC) - timedelta(hours=2)
    assert all(point.time.tzinfo is UTC for point in points)


def test_estimated_flags_and_methods_are_kept_per_point(make_client: ClientFactory) -> None:
    points = make_client(FREE_TOKEN).history("DE")
    assert [point.is_estimated for point in points] == [False] * 22 + [True] * 2
    assert {point.estimation_method for point in points if point.is_estimated} == {"TIME_SLICER_AVERAGE"}
    assert {point.estimation_method for point in points if not point.is_estimated} == {None}


def test_lifecycle_and_direct_factors_give_different_values(make_client: ClientFactory) -> None:
    lifecycle = make_client(PAID_TOKEN).past_range("DE", DAY, DAY + timedelta(hours=3))
    direct = make_client(PAID_TOKEN, emission_factor_type="direct").past_range("DE", DAY, DAY + timedelta(hours=3))
    assert {point.emission_factor_type for point in lifecycle} == {"lifecycle"}
    assert {point.emission_factor_type for point in direct} == {"direct"}
    assert all(d.carbon_intensity < lc.carbon_intensity for d, lc in zip(direct, lifecycle, strict=True))


def test_past_range_is_refused_on_a_free_token_naming_zone_and_range(make_client: ClientFactory) -> None:
    with pytest.raises(ElectricityMapsPlanError) as caught:
        make_client(FREE_TOKEN).past_range("DE", DAY, DAY + timedelta(hours=6))
    message = str(caught.value)
    assert "zone DE" in message and "2025-01-01T00:00:00+00:00" in message and "2025-01-01T06:00:00+00:00" in message
    assert caught.value.zone == "DE" and caught.value.window == (DAY, DAY + timedelta(hours=6))
    assert not caught.value.retryable


def test_long_past_range_is_split_into_calls_within_the_per_call_limit(
    sim: ElectricityMapsSimulator, make_client: ClientFactory
) -> None:
    points = make_client(PAID_TOKEN).past_range("FR", DAY, DAY + timedelta(days=25))
    assert len(points) == 25 * 24 and len({point.time for point in points}) == 25 * 24
    assert sim.state.stats()["requests"][PAST_RANGE] == 3  # 10 + 10 + 5 days


def test_bad_token_is_an_auth_error_without_retries(sim: ElectricityMapsSimulator, make_client: ClientFactory) -> None:
    with pytest.raises(ElectricityMapsAuthError, match=r"zone DE.*HTTP 401"):
        make_client("not-a-token-we-know").history("DE")
    assert sim.state.stats()["statuses"] == {401: 1}


def test_unknown_zone_is_typed(make_client: ClientFactory) -> None:
    with pytest.raises(ElectricityMapsUnknownZoneError, match="zone XX-NOWHERE"):
        make_client(PAID_TOKEN).history("XX-NOWHERE")


def test_429_waits_as_long_as_retry_after_says(start_simulator: object, make_client: ClientFactory) -> None:
    """Two requests a second: the third waits out the 1 s Retry-After once, where 10 ms backoffs would try again
    and again within the second."""
    limited = start_simulator(rate_limit=2, rate_window_seconds=1.0)
    client = make_client(PAID_TOKEN, limited)
    for _ in range(3):
        client.latest("FR")
    assert limited.state.stats()["statuses"] == {200: 3, 429: 1}


def test_the_client_keeps_to_its_rate_where_the_simulator_counts_arrivals(
    start_simulator: object, make_client: ClientFactory
) -> None:
    """Ten requests a second refused above that by the simulator: fifteen spaced calls arrive without one 429."""
    limited = start_simulator(rate_limit=10, rate_window_seconds=1.0)
    client = make_client(PAID_TOKEN, limited, requests_per_second=10.0)
    for _ in range(15):
        client.latest("FR")
    stats = limited.state.stats()
    assert len(stats["arrivals"]) == 15
    assert stats["statuses"] == {200: 15}


def test_429_beyond_the_budget_is_a_rate_limited_error(start_simulator: object, make_client: ClientFactory) -> None:
    limited = start_simulator(rate_limit=1, rate_window_seconds=60.0)
    client = make_client(PAID_TOKEN, limited, max_retry_seconds=0.5)
    client.latest("FR")
    with pytest.raises(ElectricityMapsRateLimitedError, match=r"zone FR.*HTTP 429") as caught:
        client.latest("FR")
    assert caught.value.retryable


def test_server_errors_are_retried_then_typed(sim: ElectricityMapsSimulator, make_client: ClientFactory) -> None:
    _fault(sim, kind="status", status=503, count=2)
    assert len(make_client(PAID_TOKEN).history("FR")) == 24
    _fault(sim, kind="status", status=500, count=50)
    with pytest.raises(ElectricityMapsUnavailableError, match="zone FR"):
        make_client(PAID_TOKEN, max_attempts=3).history("FR")


@pytest.mark.parametrize(("kind", "shown"), [("nulls", "None is not a number"), ("out_of_range", "-5.0 is outside")])
def test_a_bad_value_refuses_the_whole_reply_naming_value_zone_and_time(
    sim: ElectricityMapsSimulator, make_client: ClientFactory, kind: str, shown: str
) -> None:
    _fault(sim, kind=kind, path=PAST_RANGE)
    with pytest.raises(ElectricityMapsResponseError, match=f"zone DE.*point 2025-01-01T00:00:00\\+00:00.*{shown}"):
        make_client(PAID_TOKEN).past_range("DE", DAY, DAY + timedelta(hours=2))
