"""The WattTime simulator driven by hand over loopback HTTP, on a clock the test moves."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from carbon_pipeline.watttime.client import WattTimeClient
from carbon_pipeline.watttime.simulator import SIMULATOR_PASSWORD, SIMULATOR_USERNAME, SimulatorServer

NOW = datetime(2025, 1, 10, 12, 0, tzinfo=UTC)
DAY_START = "2025-01-01T00:00:00+00:00"
# Short backoffs and a generous request rate keep the suite fast; tests that measure limits override them.
FAST = {
    "timeout_seconds": 2.0,
    "backoff_base_seconds": 0.01,
    "backoff_max_seconds": 0.05,
    "max_retry_seconds": 10.0,
    "requests_per_second": 1000.0,
}
ClientFactory = Callable[..., WattTimeClient]


class FakeClock:
    """A clock the tests move by hand, so expiry, lag and rate windows need no sleeping."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Sim:
    server: SimulatorServer
    client: httpx.Client
    clock: FakeClock
    token: str | None = field(default=None)

    def login(self, username: str = SIMULATOR_USERNAME, password: str = SIMULATOR_PASSWORD) -> httpx.Response:
        return self.client.get("/login", auth=(username, password))

    def get(self, path: str, **params: Any) -> httpx.Response:
        """An authenticated GET; logs in on first use."""
        if self.token is None:
            self.token = self.login().json()["token"]
        return self.client.get(path, params=params, headers={"Authorization": f"Bearer {self.token}"})

    def historical(
        self,
        start: str = DAY_START,
        end: str = "2025-01-01T00:20:00+00:00",
        region: str = "CAISO_NORTH",
        signal_type: str = "co2_moer",
        **params: Any,
    ) -> httpx.Response:
        return self.get("/v3/historical", region=region, signal_type=signal_type, start=start, end=end, **params)

    def forecast(self, region: str = "CAISO_NORTH", signal_type: str = "co2_moer", **params: Any) -> httpx.Response:
        return self.get("/v3/forecast", region=region, signal_type=signal_type, **params)

    def historical_forecast(
        self, start: str, end: str, region: str = "CAISO_NORTH", signal_type: str = "co2_moer", **params: Any
    ) -> httpx.Response:
        return self.get(
            "/v3/forecast/historical", region=region, signal_type=signal_type, start=start, end=end, **params
        )


def point_times(body: dict[str, Any]) -> list[str]:
    """The point times of a signal reply's body, in the order the simulator sent them."""
    return [point["point_time"] for point in body["data"]]
