"""Fixtures the fault matrices share (one simulator and one Dagster instance per matrix module), and the
production layout whose gap-filling runs are killed or terminated."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from carbon_pipeline.watttime.simulator import SimulatorConfig, SimulatorServer
from carbon_pipeline_tests.support.split_rig import Rig, split_rig


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


@pytest.fixture
def rig(tmp_path: Path, prod_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    with split_rig(tmp_path, prod_env, monkeypatch) as rig:
        yield rig
