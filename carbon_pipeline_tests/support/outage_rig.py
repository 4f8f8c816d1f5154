"""A pipeline whose InfluxDB can really be stopped: its own server behind the shim, a webhook, an instance."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import dagster as dg

from carbon_pipeline.notifier import AlertNotifier
from carbon_pipeline.watttime.simulator import SimulatorServer
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.support.influxdb_shim import InfluxDBShim
from carbon_pipeline_tests.support.pipeline_harness import influxdb_resource, watttime_resource
from carbon_pipeline_tests.support.webhook_receiver import WebhookReceiver

DATABASE = "outages"
UI_URL = "http://dagster.example.org:3000"


@dataclass(frozen=True)
class OutageRig:
    influxdb: InfluxDBServer
    shim: InfluxDBShim
    receiver: WebhookReceiver
    instance: dg.DagsterInstance
    resources: dict[str, object]

    @property
    def notifier(self) -> AlertNotifier:
        notifier = self.resources["alert_notifier"]
        assert isinstance(notifier, AlertNotifier)
        return notifier


@contextmanager
def outage_rig(simulator: SimulatorServer) -> Iterator[OutageRig]:
    """Short retry budgets, so a run against a stopped InfluxDB or a failing WattTime fails in about a second."""
    with (
        InfluxDBServer() as influxdb,
        InfluxDBShim(influxdb.url, token="test-token") as shim,
        WebhookReceiver() as receiver,
        dg.instance_for_test() as instance,
    ):
        influxdb.create_database(DATABASE)
        resources: dict[str, object] = {
            "watttime": watttime_resource(
                simulator.base_url, max_attempts=2, max_retry_seconds=1.0, timeout_seconds=1.0
            ),
            "point_sink": influxdb_resource(shim.url, DATABASE, max_attempts=2, max_retry_seconds=1.0),
            "alert_notifier": AlertNotifier(webhook_url=receiver.url, ui_url=UI_URL, backoff_max_seconds=0.05),
        }
        yield OutageRig(influxdb, shim, receiver, instance, resources)
