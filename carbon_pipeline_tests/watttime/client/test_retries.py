"""The WattTime client's retries: 429 with and without Retry-After, 5xx, timeouts, broken connections and
malformed JSON, within the attempt limit and the retry time budget.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from carbon_pipeline.watttime.client import WattTimeClient
from carbon_pipeline.watttime.errors import WattTimeResponseError, WattTimeUnavailableError
from carbon_pipeline.watttime.simulator import Fault, SimulatorServer
from carbon_pipeline_tests.support.scripted_watttime import scripted_server
from carbon_pipeline_tests.support.watttime_calls import (
    GOOD_BODY,
    HISTORICAL,
    HOUR,
    POINTS_PER_HOUR,
    one_hour,
    requests_to,
)


def test_429_without_retry_after_is_retried(sim: SimulatorServer, make_client: Callable[..., WattTimeClient]) -> None:
    client = make_client()
    sim.state.inject(Fault(kind="status", status=429, path=HISTORICAL))
    assert len(one_hour(client)) == POINTS_PER_HOUR
    assert sim.state.stats()["statuses"][429] == 1
    assert requests_to(sim, HISTORICAL) == 2


def test_429_retry_after_seconds_is_honoured(sim: SimulatorServer, make_client: Callable[..., WattTimeClient]) -> None:
    client = make_client()
    one_hour(client)  # log in first so only the retry wait is timed
    sim.state.inject(Fault(kind="status", status=429, retry_after=1, path=HISTORICAL))
    started = time.monotonic()
    one_hour(client)
    assert time.monotonic() - started >= 0.95


def test_retry_after_http_date_is_honoured(make_client: Callable[..., WattTimeClient]) -> None:
    later = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)
    with scripted_server((429, {"Retry-After": later}, {"error": "Too Many Requests"}), (200, {}, GOOD_BODY)) as server:
        client = make_client(server.base_url)
        started = time.monotonic()
        (chunk,) = client.historical("CAISO_NORTH", *HOUR)
        elapsed = time.monotonic() - started
    assert chunk.frame["value"].tolist() == [900.5]
    assert 0.9 <= elapsed < 5  # HTTP-dates have whole-second resolution


def test_retry_after_is_capped_by_the_retry_budget(
    sim: SimulatorServer, make_client: Callable[..., WattTimeClient]
) -> None:
    client = make_client(max_retry_seconds=0.5)
    sim.state.inject(Fault(kind="status", status=429, retry_after=60, count=5, path=HISTORICAL))
    started = time.monotonic()
    with pytest.raises(WattTimeUnavailableError, match="HTTP 429"):
        one_hour(client)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried(
    status: int, sim: SimulatorServer, make_client: Callable[..., WattTimeClient]
) -> None:
    client = make_client()
    sim.state.inject(Fault(kind="status", status=status, count=2, path=HISTORICAL))
    assert len(one_hour(client)) == POINTS_PER_HOUR
    assert sim.state.stats()["statuses"][status] == 2
    assert requests_to(sim, HISTORICAL) == 3


def test_exhausted_retries_raise_unavailable_with_context(
    sim: SimulatorServer, make_client: Callable[..., WattTimeClient], caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(max_attempts=3)
    sim.state.inject(Fault(kind="status", status=503, count=10, path=HISTORICAL))
    with pytest.raises(WattTimeUnavailableError) as raised:
        one_hour(client)
    error = raised.value
    message = str(error)
    assert error.retryable
    assert error.request_id and f"x-request-id: {error.request_id}" in message
    assert "3 attempt(s)" in message and "HTTP 503" in message
    assert "/v3/historical" in message and "CAISO_NORTH" in message and "2024-03-01T00:00:00+00:00" in message
    assert requests_to(sim, HISTORICAL) == 3
    assert error.request_id in caplog.text  # logged, not only raised


def test_retry_time_budget_stops_before_the_attempt_limit(
    sim: SimulatorServer, make_client: Callable[..., WattTimeClient]
) -> None:
    client = make_client(max_attempts=100, max_retry_seconds=0.5, backoff_base_seconds=0.1, backoff_max_seconds=0.2)
    sim.state.inject(Fault(kind="status", status=500, count=100, path=HISTORICAL))
    started = time.monotonic()
    with pytest.raises(WattTimeUnavailableError):
        one_hour(client)
    assert time.monotonic() - started < 3
    assert requests_to(sim, HISTORICAL) < 100


def test_timeout_is_retried(sim: SimulatorServer, make_client: Callable[..., WattTimeClient]) -> None:
    client = make_client(timeout_seconds=0.5)
    one_hour(client)
    sim.state.inject(Fault(kind="slow", delay_seconds=1.5, path=HISTORICAL))
    assert len(one_hour(client)) == POINTS_PER_HOUR
    assert sim.state.stats()["faults_applied"]["slow"] == 1
    assert requests_to(sim, HISTORICAL) == 3


@pytest.mark.parametrize("kind", ["reset", "truncated"])
def test_broken_connections_are_retried(
    kind: str, sim: SimulatorServer, make_client: Callable[..., WattTimeClient]
) -> None:
    client = make_client()
    sim.state.inject(Fault(kind=kind, path=HISTORICAL))
    assert len(one_hour(client)) == POINTS_PER_HOUR
    assert sim.state.stats()["faults_applied"][kind] == 1
    assert requests_to(sim, HISTORICAL) == 2


def test_malformed_json_is_retried_like_a_transient_failure(
    sim: SimulatorServer, make_client: Callable[..., WattTimeClient]
) -> None:
    client = make_client()
    sim.state.inject(Fault(kind="malformed_json", path=HISTORICAL))
    assert len(one_hour(client)) == POINTS_PER_HOUR
    assert requests_to(sim, HISTORICAL) == 2


def test_persistent_malformed_json_is_a_response_error(
    sim: SimulatorServer, make_client: Callable[..., WattTimeClient]
) -> None:
    client = make_client(max_attempts=2)
    sim.state.inject(Fault(kind="malformed_json", count=5, path=HISTORICAL))
    with pytest.raises(WattTimeResponseError, match="not valid JSON") as raised:
        one_hour(client)
    assert "/v3/historical" in str(raised.value) and "CAISO_NORTH" in str(raised.value)
    assert "2 attempt(s)" in str(raised.value)
    assert raised.value.request_id
