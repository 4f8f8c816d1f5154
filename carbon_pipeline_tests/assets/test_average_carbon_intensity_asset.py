"""The average-carbon-intensity asset end to end: Electricity Maps simulator over loopback HTTP -> pandera -> InfluxDB.

The simulator and the asset both place "the last 24 hours" on the real clock, so each test starts well inside
an hour.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import dagster as dg
import pytest

from carbon_pipeline.assets.average_carbon_intensity import VALID_DATA_CHECK, build_average_intensity_asset
from carbon_pipeline.electricitymaps.endpoints import HISTORY_PATH, PAST_RANGE_PATH
from carbon_pipeline.electricitymaps.simulator import (
    FREE_TOKEN,
    PAID_TOKEN,
    Fault,
    SimulatorConfig,
)
from carbon_pipeline.electricitymaps.simulator.api import ESTIMATION_METHOD
from carbon_pipeline.electricitymaps.simulator.values import ZONES, intensity
from carbon_pipeline.partitions import HOUR, build_zone_partitions, format_window
from carbon_pipeline.partitions import region_partition_key as zone_key
from carbon_pipeline_tests.support.electricitymaps_rig import ElectricityMapsRig
from carbon_pipeline_tests.support.hours import hour_under_way
from carbon_pipeline_tests.support.pipeline_harness import check_evaluation, failure_message


def materialize(
    rig: ElectricityMapsRig, token: str, history_hours: int, first: datetime, last: datetime
) -> dg.ExecuteInProcessResult:
    """DE from ``first`` to ``last`` (hour starts) as one run, with a token and a plan depth."""
    asset = build_average_intensity_asset(build_zone_partitions(["DE"], first - 48 * HOUR, HOUR), history_hours)
    return rig.materialize(asset, token, ("DE", first), ("DE", last))


def stored(rig: ElectricityMapsRig) -> dict[object, dict[str, object]]:
    return {row["time"]: row for row in rig.rows("SELECT * FROM average_carbon_intensity")}


def test_a_day_equals_the_simulators_truth_in_one_history_and_one_past_range_call(
    rig: ElectricityMapsRig,
) -> None:
    newest = hour_under_way()
    first, last = newest - 24 * HOUR, newest - HOUR

    result = materialize(rig, PAID_TOKEN, 48, first, last)

    assert result.success, failure_message(result)
    rows = stored(rig)
    hours = [first + index * HOUR for index in range(24)]
    assert sorted(rows) == [int(hour.timestamp()) for hour in hours]
    for hour in hours:
        row = rows[int(hour.timestamp())]
        estimated = newest - hour < timedelta(hours=SimulatorConfig().estimated_hours)
        assert row["gco2eq_per_kwh"] == intensity("DE", ZONES["DE"], hour, "lifecycle")
        assert row["is_estimated"] is estimated
        assert row.get("estimation_method") == (ESTIMATION_METHOD if estimated else None)
        assert (row["zone"], row["signal_type"], row["source"]) == ("DE", "average_lifecycle", "electricitymaps")
    assert rig.requests() == {HISTORY_PATH: 1, PAST_RANGE_PATH: 1}
    assert rig.influxdb.query("SELECT count(moer_lbs_per_mwh) FROM carbon_intensity", rig.database) == []
    materialized = {event.partition for event in result.get_asset_materialization_events()}
    assert materialized == {str(zone_key("DE", hour)) for hour in hours}
    assert check_evaluation(result, VALID_DATA_CHECK).passed


def test_a_free_token_never_asks_for_what_is_older_than_24_hours_and_writes_nothing_for_it(
    rig: ElectricityMapsRig,
) -> None:
    newest = hour_under_way()
    first, served = newest - 26 * HOUR, newest - 23 * HOUR

    result = materialize(rig, FREE_TOKEN, 24, first, newest - HOUR)

    assert not result.success
    assert (
        f"zone DE, interval {format_window(first, served)}: not available from this source "
        "(Electricity Maps free tier serves the last 24 h); nothing written"
    ) in failure_message(result)
    assert sorted(stored(rig)) == [int((served + index * HOUR).timestamp()) for index in range(23)]
    assert rig.requests() == {HISTORY_PATH: 1}
    materialized = {event.partition for event in result.get_asset_materialization_events()}
    assert str(zone_key("DE", first)) not in materialized
    assert len(materialized) == 23


@pytest.mark.parametrize(("kind", "said"), [("nulls", "carbonIntensity None"), ("out_of_range", "carbonIntensity -5")])
def test_a_bad_value_is_refused_naming_value_zone_and_interval_and_nothing_is_written(
    rig: ElectricityMapsRig,
    kind: str,
    said: str,
) -> None:
    newest = hour_under_way()
    first, last = newest - 3 * HOUR, newest - HOUR
    rig.simulator.state.inject(Fault(kind))

    result = materialize(rig, FREE_TOKEN, 24, first, last)

    assert not result.success
    message = failure_message(result)
    assert f"zone DE, interval {format_window(first, newest)}" in message
    assert said in message
    assert stored(rig) == {}
    assert result.get_asset_materialization_events() == []
