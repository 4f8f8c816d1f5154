"""What the Dagster daemon does, done in process: evaluate schedules and sensors, launch what they ask for.

Scenarios span hours, so the schedule is evaluated at past tick times (as the daemon would have
evaluated it then); sensors are evaluated now, as the daemon evaluates them when it is running.
Every run is a real run of the real job on a real instance; cursors are carried between evaluations
exactly as the daemon stores them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import dagster as dg

from carbon_pipeline.definitions import JOB_NAME, assemble_definitions
from carbon_pipeline.schedules import SCHEDULE_NAME
from carbon_pipeline.settings import PipelineSettings


@dataclass
class InProcessDaemon:
    settings: PipelineSettings
    resources: Mapping[str, object]
    instance: dg.DagsterInstance
    cursors: dict[str, str | None] = field(default_factory=dict)
    launched: list[dg.ExecuteInProcessResult] = field(default_factory=list)
    run_config: Mapping[str, object] | None = None  # e.g. quieter loggers for long soak runs

    def __post_init__(self) -> None:
        self.definitions = assemble_definitions(self.settings, self.resources)

    def schedule_tick(self, at: datetime, name: str = SCHEDULE_NAME) -> list[dg.ExecuteInProcessResult]:
        """The tick at ``at`` of schedule ``name`` and the runs it requests, run to completion."""
        schedule = self.definitions.resolve_schedule_def(name)
        # Closed after the tick: a context left open keeps the instance it opened current for later loads.
        with dg.build_schedule_context(instance=self.instance, scheduled_execution_time=at) as context:
            requests = schedule(context)
        assert isinstance(requests, list)
        return [self.launch(request, schedule.job_name) for request in requests]

    def sensor_tick(self, name: str) -> tuple[dg.SensorResult, list[dg.ExecuteInProcessResult]]:
        """One evaluation of sensor ``name`` with its stored cursor, and the runs it requests, run to completion."""
        sensor = self.definitions.resolve_sensor_def(name)
        context = dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursors.get(name),
            resources={"alert_notifier": self.resources["alert_notifier"]},
        )
        result = sensor(context)
        assert isinstance(result, dg.SensorResult)
        self.cursors[name] = result.cursor if result.cursor is not None else context.cursor
        return result, [self.launch(request, sensor.job_name) for request in result.run_requests or []]

    def streak_failures(self, sensor: str, region: str) -> dict[str, int]:
        """Per failure kind, the failed runs in a row of ``region`` kept in failure-alert sensor ``sensor``'s cursor."""
        cursor = self.cursors[sensor]
        assert cursor is not None
        streaks = json.loads(cursor)["streaks"].get(region, {})
        return {kind: streak["failures"] for kind, streak in streaks.items()}

    def launch(self, request: dg.RunRequest, job_name: str = JOB_NAME) -> dg.ExecuteInProcessResult:
        result = self.definitions.resolve_job_def(job_name).execute_in_process(
            instance=self.instance,
            tags=dict(request.tags),
            partition_key=request.partition_key,
            run_config=self.run_config,
            raise_on_error=False,
        )
        self.launched.append(result)
        return result

    def start(self, request: dg.RunRequest, job_name: str = JOB_NAME) -> dg.DagsterRun:
        """A run in flight: launched with its job's run tags and the request's, its worker not done yet."""
        job = self.definitions.resolve_job_def(job_name)
        tags = {**job.run_tags, **request.tags}
        return self.instance.create_run_for_job(job, status=dg.DagsterRunStatus.STARTED, tags=tags)
