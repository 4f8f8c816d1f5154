"""watttime_access: the WattTime plan per configured region, read from the simulator's /v3/my-access over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from carbon_pipeline.access_gate import regions_allowed
from carbon_pipeline.assets.watttime_access import ASSET_NAME, build_watttime_access_asset
from carbon_pipeline.definitions import build_definitions
from carbon_pipeline.settings import PipelineSettings
from carbon_pipeline.watttime.access import FORECAST, HISTORICAL, SIGNAL_INDEX, AccessShapeError, parse_my_access
from carbon_pipeline.watttime.simulator import FREE_PLAN_REGIONS, Fault, SimulatorConfig, SimulatorServer
from carbon_pipeline.watttime.simulator.signal import DATA_START
from carbon_pipeline_tests.support.pipeline_harness import watttime_resource

# PJM_DC is served without forecasts; NOWHERE is configured but no plan lists it.
CONFIGURED = ("CAISO_NORTH", "PJM_DC", "NOWHERE")
COLUMNS = ("region", "plan", "historical_moer", "forecast", "signal_index", "period_seconds")


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


def read_access(config: SimulatorConfig, instance: dg.DagsterInstance) -> dict[str, Any]:
    """Materialize the asset against a simulator of ``config``; its metadata."""
    with SimulatorServer(config) as server:
        result = dg.materialize(
            [build_watttime_access_asset(CONFIGURED)],
            resources={"watttime": watttime_resource(server.base_url)},
            instance=instance,
        )
    (materialization,) = result.asset_materializations_for_node(ASSET_NAME)
    return {key: value.value for key, value in materialization.metadata.items()}


def table(metadata: dict[str, Any]) -> list[tuple[object, ...]]:
    return [tuple(record.data[column] for column in COLUMNS) for record in metadata["access"].records]


def counts(metadata: dict[str, Any]) -> tuple[int, int, int, int]:
    names = ("regions_with_moer", "regions_with_forecast", "regions_with_index_only", "regions_with_nothing")
    return tuple(metadata[name] for name in names)  # type: ignore[return-value]


@pytest.mark.integration  # a materialization tails its compute logs in a process
def test_a_full_plan_is_shown_per_region_with_what_is_not_in_it(instance: dg.DagsterInstance) -> None:
    metadata = read_access(SimulatorConfig(forecast_regions=frozenset({"CAISO_NORTH"})), instance)
    assert table(metadata) == [
        ("CAISO_NORTH", "MOER + forecast + signal index", True, True, True, 300),
        ("PJM_DC", "MOER + signal index", True, False, True, 300),
        ("NOWHERE", "not in your plan", False, False, False, None),
    ]
    assert counts(metadata) == (2, 1, 0, 1)
    assert [record.data["data_start"] for record in metadata["access"].records][:2] == [
        f"{DATA_START:%Y-%m-%dT%H:%MZ}"
    ] * 2


@pytest.mark.integration  # a materialization tails its compute logs in a process
@pytest.mark.parametrize(
    ("index_within_plan", "pjm_dc", "index_only"),
    [
        # The simulator's default: the index for every region, as v2-era sources describe it.
        (False, ("PJM_DC", "signal index only", False, False, True, 300), 1),
        # The stricter reading: the index only where the plan covers MOER.
        (True, ("PJM_DC", "not in your plan", False, False, False, None), 0),
    ],
)
def test_a_free_plan_reads_moer_for_caiso_north_only(
    instance: dg.DagsterInstance, index_within_plan: bool, pjm_dc: tuple[object, ...], index_only: int
) -> None:
    config = SimulatorConfig(plan_regions=FREE_PLAN_REGIONS, index_within_plan=index_within_plan)
    metadata = read_access(config, instance)
    assert table(metadata) == [
        ("CAISO_NORTH", "MOER + forecast + signal index", True, True, True, 300),
        pjm_dc,
        ("NOWHERE", "not in your plan", False, False, False, None),
    ]
    assert counts(metadata) == (1, 1, index_only, 2 - index_only)


@pytest.mark.integration  # a materialization tails its compute logs in a process
def test_the_gate_reads_the_latest_access_materialization(instance: dg.DagsterInstance) -> None:
    assert regions_allowed(instance, HISTORICAL, CONFIGURED) is None
    read_access(SimulatorConfig(forecast_regions=frozenset({"CAISO_NORTH"})), instance)
    read_access(SimulatorConfig(plan_regions=FREE_PLAN_REGIONS), instance)
    allowed = regions_allowed(instance, HISTORICAL, (*CONFIGURED, "IE"))
    assert allowed is not None
    assert (allowed.regions, allowed.left_out, allowed.unread) == (
        ("CAISO_NORTH", "IE"),
        ("PJM_DC", "NOWHERE"),
        ("IE",),
    )
    assert allowed.read_at.tzinfo is UTC and allowed.read_at <= datetime.now(UTC)
    assert allowed.notes()[0] == (
        f"PJM_DC: not in your WattTime plan for v3/historical (watttime_access, read {allowed.read_at:%Y-%m-%dT%H:%MZ})"
    )


def my_access(endpoints: list[dict[str, Any]], period: object = 300) -> dict[str, Any]:
    region = {"region": "PSCO", "region_full_name": "Colorado", "parent": "PSCO", "data_point_period_seconds": period}
    return {"signal_types": [{"signal_type": "co2_moer", "regions": [region | {"endpoints": endpoints}]}]}


MODEL = {"model": "2024-04-01", "data_start": "2023-01-01", "train_start": "2022-01-01", "train_end": "2024-01-01"}


def test_the_signal_index_is_a_known_endpoint_and_dates_are_utc() -> None:
    access = parse_my_access(my_access([{"endpoint": SIGNAL_INDEX, "models": [MODEL]}]))
    region = access.region("co2_moer", "PSCO")
    assert region is not None and region.allows(SIGNAL_INDEX) and not region.allows(FORECAST)
    index = region.endpoint(SIGNAL_INDEX)
    assert index is not None and index.data_start == datetime(2023, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"signal_types": "co2_moer"}, "my-access: signal_types is 'co2_moer', not a list of JSON objects"),
        (my_access([], period="300"), "region PSCO: data_point_period_seconds is '300', not a positive whole number"),
        (my_access([{"endpoint": HISTORICAL}]), "region PSCO, endpoint v3/historical: models is None"),
        (
            my_access([{"endpoint": HISTORICAL, "models": [MODEL | {"data_start": "soon"}]}]),
            "region PSCO, endpoint v3/historical, models[0]: data_start is 'soon', not an ISO date",
        ),
    ],
)
def test_a_malformed_reply_is_an_error_naming_where_and_what(payload: dict[str, Any], message: str) -> None:
    with pytest.raises(AccessShapeError, match=r"^(signal type co2_moer, |my-access)") as raised:
        parse_my_access(payload)
    assert message in str(raised.value)


def local_definitions(home: Path) -> dg.Definitions:
    return build_definitions(
        PipelineSettings.from_env({"CARBON_REGIONS": ",".join(CONFIGURED[:2]), "DAGSTER_HOME": str(home)})
    )


def test_a_deployment_without_a_read_requests_one(instance: dg.DagsterInstance, tmp_path: Path) -> None:
    evaluation = dg.evaluate_automation_conditions(defs=local_definitions(tmp_path), instance=instance)
    assert evaluation.get_num_requested(dg.AssetKey(ASSET_NAME)) == 1


@pytest.mark.integration  # a materialization tails its compute logs in a process
def test_a_failed_read_is_left_to_the_daily_schedule(instance: dg.DagsterInstance, tmp_path: Path) -> None:
    """A refused read is not asked again every minute; the schedule tries the next day."""
    with SimulatorServer(SimulatorConfig()) as server:
        server.state.inject(Fault(kind="status", status=400, path="/v3/my-access"))
        result = dg.materialize(
            [build_watttime_access_asset(CONFIGURED)],
            resources={"watttime": watttime_resource(server.base_url)},
            instance=instance,
            raise_on_error=False,
        )
    assert not result.success
    evaluation = dg.evaluate_automation_conditions(defs=local_definitions(tmp_path), instance=instance)
    assert evaluation.get_num_requested(dg.AssetKey(ASSET_NAME)) == 0
