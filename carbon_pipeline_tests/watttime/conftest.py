"""Fixtures shared by the WattTime tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from carbon_pipeline.watttime.simulator import SimulatorConfig, SimulatorServer
from carbon_pipeline_tests.support.simulator_session import FakeClock, Sim


@pytest.fixture
def make_sim() -> Iterator[Callable[..., Sim]]:
    with ExitStack() as stack:

        def make(**config: Any) -> Sim:
            clock = FakeClock()
            server = stack.enter_context(SimulatorServer(SimulatorConfig(clock=clock, **config)))
            client = stack.enter_context(httpx.Client(base_url=server.base_url, timeout=5))
            return Sim(server, client, clock)

        yield make
