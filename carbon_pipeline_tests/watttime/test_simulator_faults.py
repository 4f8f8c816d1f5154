"""The faults the WattTime simulator injects: error statuses, CloudFront HTML, slow and broken connections, and
damaged data in one reply each.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from carbon_pipeline.watttime.simulator import Fault
from carbon_pipeline_tests.support.simulator_session import Sim, point_times


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
