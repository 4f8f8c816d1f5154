"""A sensor evaluated as the daemon evaluates it, with its log read back as the UI's "View logs" reads it.

The daemon gives each tick a log key; whatever the sensor writes to ``context.log`` is stored under
that key by the instance's compute log manager, and the UI reads the records back with Dagster's
``get_instigation_log_records``. Here each evaluation gets a log key of its own (the repository name
is a fresh label), so two evaluations in the same second do not share a log.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import dagster as dg
from dagster._core.definitions.instigation_logger import get_instigation_log_records
from dagster._core.log_manager import LOG_RECORD_METADATA_ATTR


@dataclass(frozen=True)
class LoggedTick:
    result: dg.SensorResult
    messages: list[str]

    @property
    def skip_message(self) -> str | None:
        reason = self.result.skip_reason
        return None if reason is None else reason.skip_message

    def lines_starting(self, prefix: str) -> list[str]:
        return [message for message in self.messages if message.startswith(prefix)]


@dataclass(frozen=True)
class LoggedScheduleTick:
    requests: list[dg.RunRequest]
    skip_message: str | None
    messages: list[str]


def evaluate_schedule_logged(
    schedule: dg.ScheduleDefinition, instance: dg.DagsterInstance, at: datetime
) -> LoggedScheduleTick:
    """A schedule tick at ``at``, with what it wrote to its log, as the daemon gives each tick a log key."""
    log_key = [f"tick-{uuid.uuid4().hex[:8]}", schedule.name, "tick"]
    with dg.ScheduleEvaluationContext(
        instance.get_ref(), at, log_key=log_key, repository_name=log_key[0], schedule_name=schedule.name
    ) as context:
        result = schedule(context)
    if isinstance(result, dg.SkipReason):
        requests, skip = [], result.skip_message
    else:
        assert isinstance(result, list), result
        requests, skip = result, None
    records = get_instigation_log_records(instance, log_key)
    return LoggedScheduleTick(requests, skip, [record[LOG_RECORD_METADATA_ATTR]["orig_message"] for record in records])


def evaluate_logged(
    sensor: dg.SensorDefinition,
    instance: dg.DagsterInstance,
    cursor: str | None = None,
    resources: Mapping[str, object] | None = None,
) -> LoggedTick:
    with dg.build_sensor_context(
        instance=instance,
        instance_ref=instance.get_ref(),
        cursor=cursor,
        repository_name=f"tick-{uuid.uuid4().hex[:8]}",
        sensor_name=sensor.name,
        resources=resources,
    ) as context:
        result = sensor(context)
        log_key = context.log_key
    assert isinstance(result, dg.SensorResult) and log_key is not None
    records = get_instigation_log_records(instance, log_key)
    return LoggedTick(result, [record[LOG_RECORD_METADATA_ATTR]["orig_message"] for record in records])
