"""Fixtures the fault matrices share: one simulator and one Dagster instance per matrix module."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pytest

from carbon_pipeline.watttime.simulator import SimulatorConfig, SimulatorServer


@pytest.fixture(scope="module")
def shared_simulator() -> Iterator[SimulatorServer]:
    """One simulator for a matrix; each case clears its faults and statistics first.

    A matrix logs in about twice per case, so WattTime's 100 logins per 5 minutes is lifted here.
    """
    with SimulatorServer(SimulatorConfig(publication_lag_seconds=0, login_rate_limit=10_000)) as server:
        yield server


@pytest.fixture(scope="module")
def shared_instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance
