"""Simulators and clients for the Electricity Maps tests: each test gets its own simulator on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from carbon_pipeline.electricitymaps.client import ElectricityMapsClient
from carbon_pipeline.electricitymaps.simulator import ElectricityMapsSimulator, SimulatorConfig
from carbon_pipeline_tests.support.simulator_session import FAST

ClientFactory = Callable[..., ElectricityMapsClient]


@pytest.fixture
def start_simulator() -> Iterator[Callable[..., ElectricityMapsSimulator]]:
    """Start simulators with a given SimulatorConfig; all are stopped after the test."""
    with ExitStack() as stack:
        yield lambda **config: stack.enter_context(ElectricityMapsSimulator(SimulatorConfig(**config)))


@pytest.fixture
def sim(start_simulator: Callable[..., ElectricityMapsSimulator]) -> ElectricityMapsSimulator:
    return start_simulator()


@pytest.fixture
def make_client(sim: ElectricityMapsSimulator) -> Iterator[ClientFactory]:
    """Clients for `sim` (or another simulator) with FAST settings (overridable); all closed after the test."""
    with ExitStack() as stack:

        def make(token: str, server: ElectricityMapsSimulator | None = None, **overrides: Any) -> ElectricityMapsClient:
            settings = {**FAST, **overrides}
            return stack.enter_context(ElectricityMapsClient(token, (server or sim).api_url, **settings))

        yield make
