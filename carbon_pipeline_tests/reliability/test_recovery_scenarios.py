"""Outages end with every interval stored and correct, without manual action.

Each scenario plays a timeline of past schedule ticks against a real instance, the real InfluxDB
server (behind the v3 shim) and the WattTime simulator, with the outage in the middle; then the
daemon's next sensor ticks run (gap filling, alerts) and InfluxDB is compared point by point with
the simulator's truth over the whole timeline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
import time_machine

from carbon_pipeline.coverage import floor_interval, materialized_starts
from carbon_pipeline.partitions import INTERVAL
from carbon_pipeline.sensors.failure_alerts import SENSOR_NAME as ALERTS
from carbon_pipeline.sensors.gap_filler import SENSOR_NAME as GAP_FILLER
from carbon_pipeline.settings import PipelineSettings
from carbon_pipeline.watttime.simulator import Fault, SimulatorServer
from carbon_pipeline_tests.support.daemon_harness import InProcessDaemon
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.support.outage_rig import DATABASE, outage_rig
from carbon_pipeline_tests.support.pipeline_harness import ASSET, stored_points, truth
from carbon_pipeline_tests.support.webhook_receiver import WebhookReceiver

REGION = "CAISO_NORTH"
DELAY = timedelta(minutes=5)
TIMELINE_HOURS = 8
REFUSED_RETRY = timedelta(minutes=60)


@dataclass
class Scenario:
    daemon: InProcessDaemon
    influxdb: InfluxDBServer
    simulator: SimulatorServer
    receiver: WebhookReceiver
    first: datetime

    def interval(self, index: int) -> datetime:
        return self.first + index * INTERVAL

    def play(self, intervals: range, *, succeeds: bool | None) -> None:
        """Schedule ticks (and an alert-sensor tick after each) for ``intervals``; None: the daemon is down."""
        for index in intervals:
            if succeeds is None:
                continue
            tick = self.interval(index) + INTERVAL + DELAY
            results = self.daemon.schedule_tick(tick)
            assert [result.success for result in results] == [succeeds], f"tick {tick}"
            self.daemon.sensor_tick(ALERTS)

    def recover(self) -> list[dg.ExecuteInProcessResult]:
        """The daemon's sensor ticks after the outage: gap filling until nothing is missing, then alerts."""
        launched = []
        for _ in range(5):
            _, runs = self.daemon.sensor_tick(GAP_FILLER)
            launched += runs
            if not runs:
                break
        self.daemon.sensor_tick(ALERTS)
        return launched

    def compare(self, intervals: range) -> tuple[int, int, int]:
        """(expected, present, correct) intervals of ``intervals``, point by point against the truth."""
        stored = {point.time: point for point in stored_points(self.influxdb, DATABASE, REGION)}
        present = correct = 0
        for index in intervals:
            expected = truth(REGION, self.interval(index), self.interval(index + 1))
            found = [stored.get(point.time) for point in expected]
            present += all(found)
            correct += found == expected
        print(f"intervals expected {len(intervals)}, present {present}, correct {correct}")
        return len(intervals), present, correct

    def queries_for(self, index: int) -> int:
        """How many /v3/historical calls so far asked WattTime for interval ``index``."""
        start, queries = self.interval(index), self.simulator.state.stats()["historical_queries"]
        return sum(datetime.fromisoformat(q["start"]) <= start < datetime.fromisoformat(q["end"]) for q in queries)

    def materialized(self, index: int) -> bool:
        start = self.interval(index)
        stored = materialized_starts(self.daemon.instance, ASSET.key, [REGION], start, start + INTERVAL)
        return start in stored.get(REGION, set())

    def events(self) -> list[tuple[str, str]]:
        return [(payload["event"], payload["kind"]) for payload in self.receiver.payloads]


@pytest.fixture
def scenario(simulator: SimulatorServer) -> Iterator[Scenario]:
    now = datetime.now(UTC)
    first = floor_interval(now) - timedelta(hours=TIMELINE_HOURS)
    settings = PipelineSettings(
        deployment="prod",
        regions=(REGION,),
        partitions_start=datetime(first.year, first.month, first.day, tzinfo=UTC),
        schedule_delay_minutes=int(DELAY.total_seconds() // 60),
        gap_fill_hours=TIMELINE_HOURS,
        refused_retry_minutes=int(REFUSED_RETRY / timedelta(minutes=1)),
    )
    with outage_rig(simulator) as outage:
        daemon = InProcessDaemon(settings, outage.resources, outage.instance)
        daemon.sensor_tick(ALERTS)
        yield Scenario(daemon, outage.influxdb, simulator, outage.receiver, first)


def _due(scenario: Scenario) -> int:
    """Intervals of the timeline the gap filler considers due by now (taken before its tick: a quarter
    hour turning during the test only adds an interval the tick may not have seen)."""
    return int((floor_interval(datetime.now(UTC) - DELAY - timedelta(minutes=15)) - scenario.first) / INTERVAL)


@pytest.mark.slow
def test_influxdb_down_for_six_hours(scenario: Scenario) -> None:
    scenario.play(range(0, 4), succeeds=True)
    scenario.influxdb.stop()
    scenario.play(range(4, 28), succeeds=False)
    scenario.influxdb.start()
    scenario.play(range(28, 30), succeeds=True)
    assert scenario.events() == [("alert", "influxdb_write"), ("recovery", "influxdb_write")]

    due = _due(scenario)
    gap_runs = scenario.recover()
    assert gap_runs and all(run.success for run in gap_runs)
    assert scenario.compare(range(4, 28)) == (24, 24, 24)
    assert scenario.compare(range(0, due)) == (due,) * 3
    assert len(scenario.receiver.payloads) == 2


@pytest.mark.slow
def test_daemon_down_for_two_hours(scenario: Scenario) -> None:
    scenario.play(range(0, 20), succeeds=True)
    scenario.play(range(20, 28), succeeds=None)
    scenario.play(range(28, 30), succeeds=True)
    assert scenario.compare(range(20, 28)) == (8, 0, 0)

    due = _due(scenario)
    scenario.recover()
    assert scenario.compare(range(20, 28)) == (8, 8, 8)
    assert scenario.compare(range(0, due)) == (due,) * 3
    assert scenario.receiver.payloads == []


@pytest.mark.slow
@pytest.mark.parametrize(
    "outage",
    [
        pytest.param(lambda: Fault("status", status=503, count=1000, path="/v3/historical"), id="5xx"),
        pytest.param(lambda: Fault("slow", delay_seconds=2.0, count=1000, path="/v3/historical"), id="timeouts"),
    ],
)
def test_watttime_down_for_one_hour(scenario: Scenario, outage: Callable[[], Fault]) -> None:
    scenario.play(range(0, 20), succeeds=True)
    scenario.simulator.state.inject(outage())
    scenario.play(range(20, 24), succeeds=False)
    scenario.simulator.state.clear_faults()
    scenario.play(range(24, 26), succeeds=True)

    due = _due(scenario)
    scenario.recover()
    assert scenario.compare(range(20, 24)) == (4, 4, 4)
    assert scenario.compare(range(0, due)) == (due,) * 3
    assert ("alert", "influxdb_write") not in scenario.events()
    assert scenario.events() == [("alert", "watttime"), ("recovery", "watttime")]


@pytest.mark.slow
def test_a_refused_interval_is_asked_again_only_after_the_wait_and_then_stored(scenario: Scenario) -> None:
    """Rejected data is not hammered: the gap filler leaves the refused interval alone until
    ``CARBON_REFUSED_RETRY_MINUTES`` have passed (the clock moved forward past it), then requests it once
    and stores WattTime's corrected data exactly."""
    scenario.play(range(0, 20), succeeds=True)
    scenario.simulator.state.inject(Fault("out_of_range", count=1, path="/v3/historical"))
    scenario.play(range(20, 21), succeeds=False)
    scenario.play(range(21, 30), succeeds=True)
    assert scenario.compare(range(20, 21)) == (1, 0, 0) and not scenario.materialized(20)
    asked = scenario.queries_for(20)

    scenario.recover()
    with time_machine.travel(datetime.now(UTC) + REFUSED_RETRY - timedelta(minutes=10)):
        scenario.recover()
    assert scenario.queries_for(20) == asked and not scenario.materialized(20)

    with time_machine.travel(datetime.now(UTC) + REFUSED_RETRY + timedelta(minutes=1)):
        retried = scenario.recover()
    assert retried and all(run.success for run in retried)
    assert scenario.queries_for(20) == asked + 1
    assert scenario.compare(range(20, 21)) == (1, 1, 1) and scenario.materialized(20)
