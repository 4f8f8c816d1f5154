"""Gap filling: what is due, what is missing, what is already on its way, and how much is asked at once."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.utils import make_new_run_id

from carbon_pipeline.coverage import DueIntervals, due_intervals, floor_interval
from carbon_pipeline.partitions import (
    INTERVAL,
    RegionWindow,
    format_window,
    interval_range_tags,
    interval_start,
    region_partition_key,
    region_range_tags,
)
from carbon_pipeline.run_outcomes import RANGE_END_TAG, RANGE_START_TAG
from carbon_pipeline.sensors.gap_filler import (
    MAX_RUN_INTERVALS,
    TRIGGER,
    TRIGGER_TAG,
    build_gap_filler_sensor,
    plan_gap_fill,
)
from carbon_pipeline.sinks.files import LineProtocolFileSink
from carbon_pipeline.watttime.simulator import SimulatorServer
from carbon_pipeline_tests.support.pipeline_harness import ASSET, PARTITIONS, REGIONS, materialize, watttime_resource
from carbon_pipeline_tests.support.tick_logs import evaluate_logged

T0 = datetime(2026, 3, 1, tzinfo=UTC)
DUE = DueIntervals(T0, T0 + 8 * INTERVAL)


def at(index: int) -> datetime:
    return T0 + index * INTERVAL


def window(region: str, first: int, end: int) -> RegionWindow:
    return RegionWindow(region, at(first), at(end))


def test_only_intervals_past_their_tick_and_settling_margin_are_due() -> None:
    now = datetime(2026, 3, 1, 10, 7, tzinfo=UTC)
    due = due_intervals(PARTITIONS, now, timedelta(hours=2), timedelta(minutes=5))
    # 09:45-10:00 closed 7 minutes ago: its scheduled run may still be going, WattTime may still be publishing.
    assert (due.first, due.newest) == (datetime(2026, 3, 1, 8, 0, tzinfo=UTC), datetime(2026, 3, 1, 9, 30, tzinfo=UTC))


def test_nothing_is_due_before_the_partitions_start() -> None:
    start = PARTITIONS.get_partitions_def_for_dimension("time")
    assert isinstance(start, dg.TimeWindowPartitionsDefinition)
    due = due_intervals(PARTITIONS, start.start + timedelta(minutes=10), timedelta(days=7), timedelta(minutes=5))
    assert due.starts() == [] and due.newest is None


def test_missing_intervals_are_requested_per_region_newest_first() -> None:
    plan = plan_gap_fill(DUE, ["A", "B"], {"A": {at(0), at(1)}, "B": {at(7)}}, [], [], room=5)
    assert plan.windows == (window("A", 2, 8), window("B", 0, 7))
    assert plan.missing_intervals == 6 + 7


def test_intervals_in_flight_are_never_requested_again() -> None:
    plan = plan_gap_fill(DUE, ["A"], {}, in_flight=[window("A", 2, 4)], refused=[], room=5)
    assert plan.windows == (window("A", 4, 8), window("A", 0, 2))


def test_requests_stop_at_the_room_left_for_gap_filling_runs() -> None:
    plan = plan_gap_fill(DUE, ["A", "B", "C"], {}, [], [], room=2)
    assert len(plan.windows) == 2
    waiting = plan_gap_fill(DUE, ["A"], {}, [], [], room=0)
    assert waiting.windows == () and "waiting for gap-filling runs" in waiting.reason


def test_a_refused_single_interval_waits_and_a_refused_range_is_retried_interval_by_interval() -> None:
    plan = plan_gap_fill(DUE, ["A"], {}, [], refused=[window("A", 7, 8), window("A", 0, 3)], room=10)
    assert set(plan.windows) == {window("A", 0, 1), window("A", 1, 2), window("A", 2, 3), window("A", 3, 7)}
    assert plan.held_back_intervals == 1


def test_a_long_gap_is_requested_in_ranges_of_one_watttime_call() -> None:
    due = DueIntervals(T0, T0 + (MAX_RUN_INTERVALS + 10) * INTERVAL)
    plan = plan_gap_fill(due, ["A"], {}, [], [], room=5)
    assert [piece.interval_count for piece in plan.windows] == [10, MAX_RUN_INTERVALS]


def test_nothing_missing_says_so() -> None:
    plan = plan_gap_fill(DUE, ["A"], {"A": set(DUE.starts())}, [], [], room=2)
    assert plan.windows == () and plan.reason == "no interval is missing"


@pytest.fixture
def instance() -> dg.DagsterInstance:
    with dg.instance_for_test() as instance:
        yield instance


def start_run(instance: dg.DagsterInstance, tags: dict[str, str]) -> None:
    """A run in flight, as the instance records it while the run worker is going."""
    run = dg.DagsterRun(job_name="carbon_intensity_job", run_id=make_new_run_id(), tags=tags)
    instance.add_run(run._replace(status=dg.DagsterRunStatus.STARTED))


def test_the_sensor_requests_what_is_neither_stored_nor_in_flight(
    instance: dg.DagsterInstance, simulator: SimulatorServer, tmp_path: Path
) -> None:
    newest = floor_interval(datetime.now(UTC) - timedelta(minutes=20)) - INTERVAL
    first = newest - 11 * INTERVAL
    resources = {
        "watttime": watttime_resource(simulator.base_url),
        "point_sink": LineProtocolFileSink(directory=str(tmp_path)),
    }
    assert materialize(resources, "CAISO_NORTH", first, first + 3 * INTERVAL, instance=instance).success
    start_run(instance, region_range_tags("CAISO_NORTH", newest - INTERVAL, newest))
    sensor = build_gap_filler_sensor(
        dg.define_asset_job("carbon_intensity_job", selection=[ASSET]),
        ASSET.key,
        PARTITIONS,
        lookback=newest + INTERVAL - first,
        schedule_delay=timedelta(minutes=5),
        max_runs=3,
    )

    result = sensor(dg.build_sensor_context(instance=instance))
    assert isinstance(result, dg.SensorResult)
    requested = [(request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) for request in result.run_requests or []]
    assert (
        f"CAISO_NORTH|{first + 4 * INTERVAL:%Y-%m-%d-%H:%M}",
        f"CAISO_NORTH|{newest - 2 * INTERVAL:%Y-%m-%d-%H:%M}",
    ) in requested
    assert all(request.tags[TRIGGER_TAG] == TRIGGER for request in result.run_requests or [])
    assert len(requested) == 3

    for start, end in requested:
        start_run(instance, {RANGE_START_TAG: start, RANGE_END_TAG: end, TRIGGER_TAG: TRIGGER})
    full = sensor(dg.build_sensor_context(instance=instance))
    assert isinstance(full, dg.SensorResult) and not full.run_requests
    assert "all already queued or running" in str(full.skip_reason)


def test_a_scheduled_run_in_flight_holds_back_its_interval_for_every_region(instance: dg.DagsterInstance) -> None:
    """A tick's run names only its first and last region; every region in between is covered too."""
    newest = floor_interval(datetime.now(UTC) - timedelta(minutes=20)) - INTERVAL
    start_run(instance, interval_range_tags(REGIONS, newest))
    sensor = build_gap_filler_sensor(
        dg.define_asset_job("carbon_intensity_job", selection=[ASSET]),
        ASSET.key,
        PARTITIONS,
        lookback=timedelta(hours=1),
        schedule_delay=timedelta(minutes=5),
        max_runs=10,
    )

    result = sensor(dg.build_sensor_context(instance=instance))
    assert isinstance(result, dg.SensorResult)
    requested = [
        (request.tags[RANGE_START_TAG].split("|"), request.tags[RANGE_END_TAG].split("|"))
        for request in result.run_requests or []
    ]
    assert {start[0] for start, _ in requested} == set(REGIONS)
    assert all(not interval_start(start[1]) <= newest <= interval_start(end[1]) for start, end in requested)


def test_a_running_run_that_records_nothing_for_too_long_no_longer_holds_back_its_intervals(
    instance: dg.DagsterInstance,
) -> None:
    """A run left STARTED by a worker that died with its code server never ends by itself; once it has
    recorded nothing for ``stalled_after`` its intervals are requested again, and not before."""
    newest = floor_interval(datetime.now(UTC) - timedelta(minutes=20)) - INTERVAL
    start_run(instance, region_range_tags("CAISO_NORTH", newest - 3 * INTERVAL, newest) | {TRIGGER_TAG: TRIGGER})

    def caiso_north_requested(stalled_after: timedelta) -> set[datetime]:
        sensor = build_gap_filler_sensor(
            dg.define_asset_job("carbon_intensity_job", selection=[ASSET]),
            ASSET.key,
            PARTITIONS,
            lookback=timedelta(hours=1),
            schedule_delay=timedelta(minutes=5),
            max_runs=1 + len(REGIONS),
            stalled_after=stalled_after,
        )
        result = sensor(dg.build_sensor_context(instance=instance))
        assert isinstance(result, dg.SensorResult)
        starts: set[datetime] = set()
        for request in result.run_requests or []:
            (region, first), (_, last) = (request.tags[tag].split("|") for tag in (RANGE_START_TAG, RANGE_END_TAG))
            if region == "CAISO_NORTH":
                starts.update(RegionWindow(region, interval_start(first), interval_start(last) + INTERVAL).starts())
        return starts

    assert newest not in caiso_north_requested(timedelta(hours=1))
    time.sleep(0.01)
    assert newest in caiso_north_requested(timedelta(milliseconds=1))


def test_a_tick_logs_what_is_missing_what_it_requests_and_why_it_then_requests_nothing(
    instance: dg.DagsterInstance,
) -> None:
    """What "View logs" on the tick shows: the window, the missing count per region, the requested ranges."""
    sensor = build_gap_filler_sensor(
        dg.define_asset_job("carbon_intensity_job", selection=[ASSET]),
        ASSET.key,
        PARTITIONS,
        lookback=timedelta(hours=2),
        schedule_delay=timedelta(minutes=5),
        max_runs=1,
    )
    due = due_intervals(PARTITIONS, datetime.now(UTC), timedelta(hours=2), timedelta(minutes=5))
    starts = due.starts()
    for region, stored in (("CAISO_NORTH", starts[:-2]), ("IE", starts)):
        for start in stored:
            key = str(region_partition_key(region, start))
            instance.report_runless_asset_event(dg.AssetMaterialization(ASSET.key, partition=key))

    tick = evaluate_logged(sensor, instance)
    assert tick.messages[:2] == [
        f"Window {format_window(due.first, due.end)} ({len(starts)} interval(s) per region): "
        f"{2 + len(starts)} interval(s) missing in 2 of 3 region(s): CAISO_NORTH 2, PJM_DC {len(starts)}.",
        f"Requesting 1 run(s): region CAISO_NORTH, interval {format_window(due.end - 2 * INTERVAL, due.end)}; "
        "1 more window(s) wait for gap-filling runs in flight to finish",
    ]
    (request,) = tick.result.run_requests or []
    assert request.tags[RANGE_START_TAG] == str(region_partition_key("CAISO_NORTH", due.end - 2 * INTERVAL))
    assert tick.skip_message is None and not tick.lines_starting("Skipped: ")

    start_run(instance, region_range_tags("CAISO_NORTH", due.end - 2 * INTERVAL, due.end - INTERVAL))
    start_run(instance, region_range_tags("PJM_DC", due.first, due.end - INTERVAL))
    idle = evaluate_logged(sensor, instance)
    assert not idle.result.run_requests
    assert idle.skip_message == f"{2 + len(starts)} interval(s) missing, all already queued or running"
    assert idle.lines_starting("Skipped: ") == [f"Skipped: {idle.skip_message}"]
