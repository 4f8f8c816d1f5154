"""Fixtures shared by the WattTime tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from carbon_pipeline.watttime.client import WattTimeClient
from carbon_pipeline.watttime.simulator import SIMULATOR_PASSWORD, SIMULATOR_USERNAME, SimulatorConfig, SimulatorServer
from carbon_pipeline_tests.support.simulator_session import FAST, ClientFactory, FakeClock, Sim


@pytest.fixture
def client_factory() -> Iterator[ClientFactory]:
    """Build clients for a base URL with FAST settings (overridable), as the simulator's account; closed after."""
    with ExitStack() as stack:

        def make(base_url: str, **overrides: Any) -> WattTimeClient:
            settings = {"username": SIMULATOR_USERNAME, "password": SIMULATOR_PASSWORD, **FAST, **overrides}
            username, password = settings.pop("username"), settings.pop("password")
            return stack.enter_context(WattTimeClient(username, password, base_url, **settings))

        yield make


@pytest.fixture
def make_sim() -> Iterator[Callable[..., Sim]]:
    with ExitStack() as stack:

        def make(**config: Any) -> Sim:
            clock = FakeClock()
            server = stack.enter_context(SimulatorServer(SimulatorConfig(clock=clock, **config)))
            client = stack.enter_context(httpx.Client(base_url=server.base_url, timeout=5))
            return Sim(server, client, clock)

        yield make


@pytest.fixture
def sim(make_sim: Callable[..., Sim]) -> Sim:
    """A simulator on a fake clock with its default config, and an HTTP client for it."""
    return make_sim()
