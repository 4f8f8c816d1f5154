"""The revision sweep asks WattTime only for the regions the latest plan read allows historical MOER for."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pytest

from carbon_pipeline.assets.revision_sweep import build_revision_sweep_asset
from carbon_pipeline.assets.watttime_access import build_watttime_access_asset
from carbon_pipeline.watttime.simulator import SimulatorConfig, SimulatorServer

REGIONS = ("CAISO_NORTH", "PJM_DC")


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    """A free account: historical MOER for CAISO_NORTH only; PJM_DC answers 403."""
    with SimulatorServer(SimulatorConfig(plan_regions=frozenset({"CAISO_NORTH"}), publication_lag_seconds=0)) as server:
        yield server


@pytest.mark.integration  # a materialization tails its compute logs in a process
def test_a_region_outside_the_plan_is_left_out_of_the_sweep_and_said_so(
    resources: dict[str, object], instance: dg.DagsterInstance, simulator: SimulatorServer
) -> None:
    assert dg.materialize([build_watttime_access_asset(REGIONS)], resources=resources, instance=instance).success
    simulator.state.reset_stats()

    result = dg.materialize(
        [build_revision_sweep_asset(REGIONS, revision_days=1)], resources=resources, instance=instance
    )

    assert result.success
    asked = {query["region"] for query in simulator.state.stats()["historical_queries"]}
    assert asked == {"CAISO_NORTH"}
    logged = [
        event.message
        for event in instance.all_logs(result.run_id)
        if event.message and "not in your WattTime plan" in event.message
    ]
    assert len(logged) == 1 and logged[0].startswith("PJM_DC: not in your WattTime plan for v3/historical")
