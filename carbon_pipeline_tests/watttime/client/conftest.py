"""Simulators and clients for the WattTime client tests: each test gets its own simulator on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest

from carbon_pipeline.watttime.client import WattTimeClient
from carbon_pipeline.watttime.simulator import SimulatorConfig, SimulatorServer
from carbon_pipeline_tests.support.simulator_session import ClientFactory


@pytest.fixture
def start_simulator() -> Iterator[Callable[..., SimulatorServer]]:
    """Start simulators with a given SimulatorConfig; all are stopped after the test."""
    with ExitStack() as stack:
        yield lambda **config: stack.enter_context(SimulatorServer(SimulatorConfig(**config)))


@pytest.fixture
def sim(start_simulator: Callable[..., SimulatorServer]) -> SimulatorServer:
    return start_simulator()


@pytest.fixture
def make_client(sim: SimulatorServer, client_factory: ClientFactory) -> Callable[..., WattTimeClient]:
    """Build clients against `sim` (or another base URL) with FAST settings; all are closed after the test."""
    return lambda base_url=None, **overrides: client_factory(base_url or sim.base_url, **overrides)
