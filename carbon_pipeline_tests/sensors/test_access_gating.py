"""The schedules and gap fillers of the deployment request only the regions the latest watttime_access read
allows, say in the tick's log why the others are left out, and request every region before any read.

The plan is read from the WattTime simulator over HTTP by a real materialization of the asset, into the
instance the ticks are then evaluated against, as the daemon evaluates them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from carbon_pipeline.assets.watttime_access import build_watttime_access_asset
from carbon_pipeline.coverage import floor_interval
from carbon_pipeline.definitions import FORECAST_GAP_FILLER, build_definitions
from carbon_pipeline.partitions import INTERVAL, RANGE_END_TAG, RANGE_START_TAG
from carbon_pipeline.schedules import FORECAST_SCHEDULE_NAME, SCHEDULE_NAME
from carbon_pipeline.sensors.gap_filler import SENSOR_NAME as GAP_FILLER
from carbon_pipeline.settings import PipelineSettings
from carbon_pipeline.watttime.simulator import SimulatorConfig, SimulatorServer
from carbon_pipeline_tests.support.pipeline_harness import watttime_resource
from carbon_pipeline_tests.support.tick_logs import evaluate_logged, evaluate_schedule_logged

REGIONS = ("CAISO_NORTH", "PJM_DC", "IE")
# MOER for CAISO_NORTH and IE, forecasts for CAISO_NORTH only.
PLAN = SimulatorConfig(plan_regions=frozenset({"CAISO_NORTH", "IE"}), forecast_regions=frozenset({"CAISO_NORTH"}))
TICK = floor_interval(datetime.now(UTC)) + timedelta(minutes=5)


@pytest.fixture
def defs(tmp_path: Path) -> dg.Definitions:
    env = {"CARBON_REGIONS": ",".join(REGIONS), "CARBON_PARTITIONS_START": "2d", "DAGSTER_HOME": str(tmp_path)}
    return build_definitions(PipelineSettings.from_env(env | {"CARBON_GAP_FILL_MAX_RUNS": "10"}))


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


def read_plan(instance: dg.DagsterInstance, config: SimulatorConfig) -> datetime:
    """Materialize watttime_access against a simulator granting ``config``'s plan; when it was read."""
    with SimulatorServer(config) as server:
        resources = {"watttime": watttime_resource(server.base_url)}
        assert dg.materialize([build_watttime_access_asset(REGIONS)], resources=resources, instance=instance).success
    event = instance.get_latest_materialization_event(dg.AssetKey("watttime_access"))
    assert event is not None
    return datetime.fromtimestamp(event.timestamp, UTC)


def ranges(requests: list[dg.RunRequest]) -> list[tuple[str, ...]]:
    """Each request's first and last region."""
    return [
        (request.tags[RANGE_START_TAG].split("|")[0], request.tags[RANGE_END_TAG].split("|")[0]) for request in requests
    ]


def left_out(region: str, endpoint: str, read_at: datetime) -> str:
    return f"{region}: not in your WattTime plan for {endpoint} (watttime_access, read {read_at:%Y-%m-%dT%H:%MZ})"


@pytest.mark.integration  # a materialization tails its compute logs in a process
def test_the_schedules_request_only_regions_the_plan_allows_and_say_why(
    defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    read_at = read_plan(instance, PLAN)

    measured = evaluate_schedule_logged(defs.resolve_schedule_def(SCHEDULE_NAME), instance, TICK)
    # PJM_DC sits between the two allowed regions, so the tick is two runs.
    assert ranges(measured.requests) == [("CAISO_NORTH", "CAISO_NORTH"), ("IE", "IE")]
    assert len({request.run_key for request in measured.requests}) == 2
    assert measured.messages == [left_out("PJM_DC", "v3/historical", read_at)]

    forecast = evaluate_schedule_logged(defs.resolve_schedule_def(FORECAST_SCHEDULE_NAME), instance, TICK)
    assert ranges(forecast.requests) == [("CAISO_NORTH", "CAISO_NORTH")]
    assert forecast.messages == [left_out(region, "v3/forecast", read_at) for region in ("PJM_DC", "IE")]


@pytest.mark.integration  # a materialization tails its compute logs in a process
def test_the_gap_fillers_request_only_regions_the_plan_allows_and_say_why(
    defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    read_at = read_plan(instance, PLAN)

    measured = evaluate_logged(defs.resolve_sensor_def(GAP_FILLER), instance)
    assert {first for first, _ in ranges(list(measured.result.run_requests or []))} == {"CAISO_NORTH", "IE"}
    assert left_out("PJM_DC", "v3/historical", read_at) in measured.messages

    forecast = evaluate_logged(defs.resolve_sensor_def(FORECAST_GAP_FILLER), instance)
    assert {first for first, _ in ranges(list(forecast.result.run_requests or []))} == {"CAISO_NORTH"}
    assert {left_out(region, "v3/forecast", read_at) for region in ("PJM_DC", "IE")} <= set(forecast.messages)


@pytest.mark.integration  # a materialization tails its compute logs in a process
def test_a_plan_covering_no_configured_region_skips_the_tick_saying_so(
    defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    read_at = read_plan(instance, SimulatorConfig(plan_regions=frozenset({"PSCO"})))

    tick = evaluate_schedule_logged(defs.resolve_schedule_def(SCHEDULE_NAME), instance, TICK)
    assert tick.requests == []
    notes = ", ".join(left_out(region, "v3/historical", read_at) for region in REGIONS)
    assert tick.skip_message == f"no configured region is in the WattTime plan for v3/historical: {notes}"
    gap_fill = evaluate_logged(defs.resolve_sensor_def(GAP_FILLER), instance)
    assert gap_fill.skip_message == "no configured region is in the WattTime plan for v3/historical"


def test_before_any_read_every_configured_region_is_requested(
    defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    tick = evaluate_schedule_logged(defs.resolve_schedule_def(SCHEDULE_NAME), instance, TICK)
    (request,) = tick.requests
    assert ranges(tick.requests) == [("CAISO_NORTH", "IE")]
    assert request.run_key == f"{TICK - timedelta(minutes=5) - INTERVAL:%Y-%m-%d-%H:%M}"
    assert tick.messages == []

    gap_fill = evaluate_logged(defs.resolve_sensor_def(GAP_FILLER), instance)
    assert {first for first, _ in ranges(list(gap_fill.result.run_requests or []))} == set(REGIONS)
