"""The Electricity Maps simulator over loopback HTTP: plans, forecasts, granularities, synthetic zones, the
429 reply and its headers, and request counts per path on the control surface."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from carbon_pipeline.electricitymaps.simulator import FREE_TOKEN, PAID_TOKEN, ElectricityMapsSimulator

FORECAST = "/carbon-intensity/forecast"
HISTORY = "/carbon-intensity/history"


def _get(sim: ElectricityMapsSimulator, path: str, token: str, **params: str) -> httpx.Response:
    return httpx.get(f"{sim.api_url}{path}", params=params, headers={"auth-token": token})


def test_forecast_reaches_72_hours_on_a_paid_token_and_is_refused_on_a_free_one(sim: ElectricityMapsSimulator) -> None:
    reply = _get(sim, FORECAST, PAID_TOKEN, zone="DE", horizonHours="72")
    points = reply.json()["forecast"]
    assert reply.status_code == 200 and len(points) == 72
    assert datetime.fromisoformat(points[0]["datetime"]) > datetime.now(UTC)
    refused = _get(sim, FORECAST, FREE_TOKEN, zone="DE")
    assert refused.status_code == 403 and refused.json()["status"] == "error"


def test_15_minute_history_is_paid_only(sim: ElectricityMapsSimulator) -> None:
    assert len(_get(sim, HISTORY, PAID_TOKEN, zone="FR", temporalGranularity="15_minutes").json()["history"]) == 96
    assert _get(sim, HISTORY, FREE_TOKEN, zone="DE", temporalGranularity="15_minutes").status_code == 403


def test_synthetic_zones_are_served_for_benchmarks(start_simulator: Callable[..., ElectricityMapsSimulator]) -> None:
    sim = start_simulator(synthetic_zones=100)
    assert _get(sim, HISTORY, PAID_TOKEN, zone="XX-SYN-099").status_code == 200
    assert _get(sim, HISTORY, PAID_TOKEN, zone="XX-SYN-100").status_code == 404


def test_over_the_rate_a_429_says_when_to_come_back(start_simulator: Callable[..., ElectricityMapsSimulator]) -> None:
    sim = start_simulator(rate_limit=1, rate_window_seconds=30.0)
    assert _get(sim, HISTORY, PAID_TOKEN, zone="FR").status_code == 200
    limited = _get(sim, HISTORY, PAID_TOKEN, zone="FR")
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 30
    assert limited.headers["X-RateLimit-Limit"] == "1" and limited.headers["X-RateLimit-Remaining"] == "0"


def test_stats_count_requests_per_path(sim: ElectricityMapsSimulator) -> None:
    for _ in range(2):
        _get(sim, HISTORY, FREE_TOKEN, zone="DE")
    _get(sim, FORECAST, FREE_TOKEN, zone="DE")
    stats = httpx.get(f"{sim.base_url}/_simulator/stats").json()
    assert stats["requests"] == {HISTORY: 2, FORECAST: 1}
    assert stats["statuses"] == {"200": 2, "403": 1}
    assert len(stats["arrivals"]) == 3 and stats["arrivals"] == sorted(stats["arrivals"])
