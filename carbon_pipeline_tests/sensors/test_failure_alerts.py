"""The failure-alert sensor against real failing runs: InfluxDB stopped, WattTime failing, data rejected.

Runs are real materializations on a real Dagster instance; InfluxDB is a real server that is really
stopped; alerts go to a real HTTP receiver on loopback. The sensor is evaluated as the daemon would,
with its cursor carried from one evaluation to the next.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from carbon_pipeline.notifier import AlertEvent
from carbon_pipeline.partitions import INTERVAL, RegionWindow
from carbon_pipeline.run_outcomes import URGENCY, FailedRegion, FailureKind, RunOutcome
from carbon_pipeline.sensors.failure_alerts import AlertState, build_failure_alert_sensor
from carbon_pipeline.watttime.simulator import Fault, SimulatorServer
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.support.outage_rig import UI_URL, OutageRig, outage_rig
from carbon_pipeline_tests.support.pipeline_harness import (
    ASSET,
    PARTITIONS,
    REGIONS,
    materialize,
)
from carbon_pipeline_tests.support.tick_logs import evaluate_logged
from carbon_pipeline_tests.support.webhook_receiver import WebhookReceiver

REGION = "CAISO_NORTH"
SKIP_NOTHING = "0 finished run(s) read, nothing to report"
FIRST = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)


@dataclass
class AlertRig:
    """The outage rig and the simulator, plus the sensor and the cursor the daemon would keep for it."""

    outage: OutageRig
    simulator: SimulatorServer
    sensor: dg.SensorDefinition = field(default_factory=lambda: build_failure_alert_sensor(ASSET.key, PARTITIONS, 3))
    cursor: str | None = None
    runs: int = 0
    log: list[str] = field(default_factory=list)

    @property
    def influxdb(self) -> InfluxDBServer:
        return self.outage.influxdb

    @property
    def receiver(self) -> WebhookReceiver:
        return self.outage.receiver

    def run_next_interval(self) -> dg.ExecuteInProcessResult:
        start = FIRST + self.runs * INTERVAL
        self.runs += 1
        return materialize(self.outage.resources, REGION, start, instance=self.outage.instance)

    def evaluate(self) -> dg.SensorResult:
        """One tick with the kept cursor; its log lines, as "View logs" shows them, are kept in ``log``."""
        tick = evaluate_logged(self.sensor, self.outage.instance, self.cursor, {"alert_notifier": self.outage.notifier})
        self.cursor = tick.result.cursor
        self.log = tick.messages
        return tick.result

    def run_and_evaluate(self, *, succeeds: bool) -> None:
        assert self.run_next_interval().success is succeeds
        self.evaluate()


@pytest.fixture
def rig(simulator: SimulatorServer) -> Iterator[AlertRig]:
    with outage_rig(simulator) as outage:
        rig = AlertRig(outage, simulator)
        rig.evaluate()
        yield rig


@pytest.mark.slow
def test_one_alert_after_the_third_write_failure_and_one_recovery_notice(rig: AlertRig) -> None:
    rig.influxdb.stop()
    for expected_alerts in (0, 0, 1, 1, 1):
        rig.run_and_evaluate(succeeds=False)
        assert len(rig.receiver.payloads) == expected_alerts
    rig.influxdb.start()
    rig.run_and_evaluate(succeeds=True)
    rig.evaluate()

    alert, recovery = rig.receiver.payloads
    assert alert["event"] == "alert" and alert["kind"] == "influxdb_write"
    assert alert["region"] == REGION and alert["failures"] == 3
    assert alert["intervals"] == [f"{FIRST:%Y-%m-%dT%H:%M}Z..{FIRST + 3 * INTERVAL:%Y-%m-%dT%H:%M}Z"]
    assert alert["first_failure"] <= alert["last_failure"]
    assert "InfluxDB" in alert["last_error"] and REGION in alert["last_error"]
    assert alert["run_url"].startswith(f"{UI_URL}/runs/")
    assert REGION in alert["text"] and alert["run_url"] in alert["text"]
    assert recovery["event"] == "recovery" and recovery["failures"] == 5
    assert recovery["intervals"] == [f"{FIRST:%Y-%m-%dT%H:%M}Z..{FIRST + 5 * INTERVAL:%Y-%m-%dT%H:%M}Z"]
    assert "test-token" not in str(rig.receiver.payloads)


def test_a_restarted_evaluation_neither_repeats_nor_forgets_the_streak(rig: AlertRig) -> None:
    rig.influxdb.stop()
    for _ in range(3):
        rig.run_and_evaluate(succeeds=False)
    saved = rig.cursor
    rig.sensor = build_failure_alert_sensor(ASSET.key, PARTITIONS, 3)  # a fresh process: only the cursor survives
    rig.evaluate()
    rig.cursor = saved
    rig.evaluate()
    rig.run_and_evaluate(succeeds=False)
    assert [payload["event"] for payload in rig.receiver.payloads] == ["alert"]
    rig.influxdb.start()
    rig.run_and_evaluate(succeeds=True)
    assert [payload["event"] for payload in rig.receiver.payloads] == ["alert", "recovery"]


def test_each_tick_logs_the_runs_it_read_what_it_held_back_and_what_it_sent(rig: AlertRig) -> None:
    assert rig.log == ["Read 0 finished run(s) of the asset, 0 with failed region(s)", f"Skipped: {SKIP_NOTHING}"]
    rig.influxdb.stop()
    rig.run_and_evaluate(succeeds=False)
    assert rig.log == [
        "Read 1 finished run(s) of the asset, 1 with failed region(s)",
        f"Not alerted: {REGION} (InfluxDB writes failing): 1 of 3 failed run(s) before an alert",
        "Skipped: 1 finished run(s) read, nothing to report",
    ]
    rig.run_and_evaluate(succeeds=False)
    rig.run_and_evaluate(succeeds=False)
    assert rig.log[0] == "Read 1 finished run(s) of the asset, 1 with failed region(s)"
    assert f"ALERT: InfluxDB writes failing for region {REGION} (3 failed run(s) in a row)" in rig.log[1]
    assert rig.log[2:] == ["Skipped: 1 finished run(s) read, 1 alert(s) and recovery notice(s) sent"]
    rig.run_and_evaluate(succeeds=False)
    assert f"Not alerted: {REGION} (InfluxDB writes failing): already alerted, 4 failed run(s) in a row" in rig.log


def test_watttime_outages_neither_advance_nor_reset_the_write_failure_count(rig: AlertRig) -> None:
    rig.influxdb.stop()
    rig.run_and_evaluate(succeeds=False)
    rig.run_and_evaluate(succeeds=False)
    rig.simulator.state.inject(Fault("status", status=503, count=10, path="/v3/historical"))
    rig.run_and_evaluate(succeeds=False)
    rig.simulator.state.clear_faults()
    assert rig.receiver.payloads == []
    rig.run_and_evaluate(succeeds=False)
    (alert,) = rig.receiver.payloads
    assert alert["kind"] == "influxdb_write" and alert["failures"] == 3


def test_watttime_outages_get_their_own_alert_and_never_a_write_failure_alert(rig: AlertRig) -> None:
    rig.simulator.state.inject(Fault("status", status=502, count=100, path="/v3/historical"))
    for _ in range(4):
        rig.run_and_evaluate(succeeds=False)
    (alert,) = rig.receiver.payloads
    assert alert["kind"] == "watttime" and "WattTime" in alert["text"]


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (Fault("status", status=503, count=1000, path="/v3/historical"), "watttime"),
        (Fault("missing_point", count=1000), "data_incomplete"),
    ],
    ids=["watttime_outage", "incomplete_data"],
)
def test_watttime_streaks_alert_once_and_recover_once(rig: AlertRig, fault: Fault, kind: str) -> None:
    """As InfluxDB streaks do: one alert when the streak reaches the threshold, none while it goes on, one
    recovery notice at the first stored run, and nothing more once the region is healthy."""
    rig.simulator.state.inject(fault)
    for expected_alerts in (0, 0, 1, 1):
        rig.run_and_evaluate(succeeds=False)
        assert len(rig.receiver.payloads) == expected_alerts
    rig.simulator.state.clear_faults()
    rig.run_and_evaluate(succeeds=True)
    rig.run_and_evaluate(succeeds=True)

    alert, recovery = rig.receiver.payloads
    assert (alert["event"], alert["kind"], alert["failures"]) == ("alert", kind, 3)
    assert (recovery["event"], recovery["kind"], recovery["failures"]) == ("recovery", kind, 4)
    assert alert["region"] == recovery["region"] == REGION


def test_rejected_data_is_alerted_at_once_and_is_not_a_write_failure(rig: AlertRig) -> None:
    rig.simulator.state.inject(Fault("out_of_range", count=1))
    rig.run_and_evaluate(succeeds=False)
    (alert,) = rig.receiver.payloads
    assert alert["kind"] == "data_rejected" and alert["failures"] == 1
    assert "validation" in alert["text"]


def test_a_failing_webhook_never_breaks_the_sensor(rig: AlertRig) -> None:
    rig.receiver.refuse(500, count=100)
    rig.influxdb.stop()
    for _ in range(3):
        rig.run_and_evaluate(succeeds=False)
    assert rig.receiver.attempts == rig.outage.notifier.max_attempts
    rig.influxdb.start()
    rig.run_and_evaluate(succeeds=True)
    assert rig.receiver.attempts == 2 * rig.outage.notifier.max_attempts
    assert rig.cursor is not None and '"streaks": {}' in rig.cursor


def test_runs_of_other_assets_are_ignored(rig: AlertRig) -> None:
    @dg.asset
    def unrelated() -> None:
        raise RuntimeError("not ours")

    for _ in range(4):
        dg.materialize([unrelated], instance=rig.outage.instance, raise_on_error=False)
    result = rig.evaluate()
    assert rig.receiver.payloads == [] and result.skip_reason is not None


def _tick_outcome(index: int, failed: dict[str, FailureKind]) -> RunOutcome:
    """A finished run over every region of one interval in which only the ``failed`` regions failed."""
    start = FIRST + index * INTERVAL
    windows = tuple(RegionWindow(region, start, start + INTERVAL) for region in REGIONS)
    message = "\n".join(f"region {region}, interval ...: {kind.label}" for region, kind in failed.items())
    kinds = {region: FailedRegion(kind, kind != FailureKind.DATA_REJECTED) for region, kind in failed.items()}
    return RunOutcome(f"run-{index}", start, windows, min(failed.values(), key=URGENCY.index), message, False, kinds)


def test_each_region_of_a_failed_run_counts_for_its_own_reason_and_stored_regions_as_successes() -> None:
    state = AlertState(after_storage_id=0)
    first = _tick_outcome(0, {"PJM_DC": FailureKind.DATA_REJECTED, "IE": FailureKind.DATA_INCOMPLETE})
    assert [(alert.event, alert.fields["region"]) for alert in state.track(first, threshold=3)] == [
        (AlertEvent.ALERT, "PJM_DC")
    ]
    assert {region: set(kinds) for region, kinds in state.streaks.items()} == {
        "PJM_DC": {"data_rejected"},
        "IE": {"data_incomplete"},
    }

    second = state.track(_tick_outcome(1, {"IE": FailureKind.DATA_INCOMPLETE}), threshold=3)
    assert [(alert.event, alert.fields["region"]) for alert in second] == [(AlertEvent.RECOVERY, "PJM_DC")]
    assert set(state.streaks) == {"IE"} and state.streaks["IE"]["data_incomplete"].failures == 2
    assert state.streaks["IE"]["data_incomplete"].last_error == "region IE, interval ...: WattTime data incomplete"


def test_failures_below_the_threshold_or_already_alerted_are_named_with_why_they_were_not_alerted() -> None:
    state = AlertState(after_storage_id=0)
    first = _tick_outcome(0, {"PJM_DC": FailureKind.DATA_REJECTED, "IE": FailureKind.DATA_INCOMPLETE})
    alerts = state.track(first, threshold=3)
    assert state.unalerted(first, alerts, threshold=3) == [
        "IE (WattTime data incomplete): 1 of 3 failed run(s) before an alert"
    ]
    again = _tick_outcome(1, {"PJM_DC": FailureKind.DATA_REJECTED})
    assert state.unalerted(again, state.track(again, threshold=3), threshold=3) == [
        "PJM_DC (WattTime data rejected by validation): already alerted, 2 failed run(s) in a row"
    ]
