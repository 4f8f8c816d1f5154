"""`dagster dev` (webserver, daemon and code server) as a user starts it, driven through the UI's GraphQL API.

Shared by the UI tests and the end-to-end benchmarks: whatever they measure goes through the same
processes, daemons and run launcher as a click in the Dagster UI. ``DagsterGraphQL`` is the UI's API
itself, for any deployment that serves it (``dagster dev`` here, the split deployment of
``split_deployment.py``).
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx

from carbon_pipeline_tests.support.processes import ServerProcess, free_loopback_port

REPO = Path(__file__).resolve().parents[2]
DAGSTER = Path(sys.executable).parent / "dagster"
READY_TIMEOUT_SECONDS = 120
STOP_TIMEOUT_SECONDS = 60
FINISHED_BACKFILL = ("COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED")
FINISHED_RUN = ("SUCCESS", "FAILURE", "CANCELED")
SENSOR_TAG = "dagster/sensor_name"  # Dagster's tag on every run and backfill a sensor requests
SCHEDULE_TAG = "dagster/schedule_name"  # and on every run a schedule requests
BACKFILL_TAG = "dagster/backfill"  # and on every run of a backfill, its id
T = TypeVar("T")

LAUNCH_BACKFILL = """
mutation ($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}"""
REEXECUTE_BACKFILL = """
mutation ($params: ReexecutionParams!) {
  reexecutePartitionBackfill(reexecutionParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}"""
LAUNCH_RUN = """
mutation ($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
  }
}"""
BACKFILL_STATUS = """
query ($id: String!) {
  partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status } }
  runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) {
    ... on Runs { results { runId status creationTime startTime endTime } }
  }
}"""
DAEMON_HEALTH = """
query Daemon($type: String!) { instance { daemonHealth { daemonStatus(daemonType: $type) { lastHeartbeatTime } } } }
"""
RUN_STATUS = "query ($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"
RUN_MATERIALIZATIONS = """
query ($id: ID!) {
  runOrError(runId: $id) { ... on Run { assetMaterializations { partition } } }
}"""
RUNS_TAGGED = """
query ($key: String!, $value: String!) {
  runsOrError(filter: {tags: [{key: $key, value: $value}]}) {
    ... on Runs { results { runId status creationTime startTime endTime tags { key value } } }
  }
}"""

# A sensor's latest ticks with what the UI shows of each: status, skip reason, runs, "View logs".
SENSOR_TICKS = """
query ($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    ... on Sensor {
      sensorState { ticks(limit: 10) { timestamp status skipReason runIds logEvents { events { message } } } }
    }
  }
}"""
LOCATION = "carbon_pipeline"  # workspace.yaml
REPOSITORY = "__repository__"  # Dagster's name for the repository of a module's Definitions


class DagsterGraphQL:
    """The GraphQL API of a Dagster webserver at ``url``, called as the Dagster UI calls it.

    Subclasses run the processes behind the API: ``require_running`` raises when one has exited,
    and ``logs`` names where to look when something did not happen in time.
    """

    def __init__(self, url: str) -> None:
        self.url = url

    def require_running(self) -> None:
        """Raise ``AssertionError`` if a process behind the API has exited; every wait calls it."""

    def logs(self) -> str:
        """Where the processes behind the API log, for failure messages."""
        return ""

    def graphql(self, query: str, variables: Mapping[str, object] | None = None) -> dict[str, Any]:
        response = httpx.post(self.url, json={"query": query, "variables": dict(variables or {})}, timeout=60)
        response.raise_for_status()
        return response.json()["data"]

    def launch_backfill(self, assets: str | Sequence[str], partition_keys: Sequence[str]) -> str:
        """Launch a backfill of ``partition_keys`` as the asset page's "Launch backfill" does; its id.

        ``assets`` is one asset's name, or every asset of a multi-asset that cannot be split (the UI selects
        them all, and Dagster refuses a selection of part of one).
        """
        names = [assets] if isinstance(assets, str) else list(assets)
        selection = [{"path": [name]} for name in names]
        params = {"partitionNames": list(partition_keys), "assetSelection": selection, "fromFailure": False}
        launched = self.graphql(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
        if launched["__typename"] != "LaunchBackfillSuccess":
            raise AssertionError(f"backfill not launched: {launched}")
        return str(launched["backfillId"])

    def reexecute_backfill_from_failure(self, backfill_id: str) -> str:
        """What the backfill page's "Re-execute -> From failure" sends: a backfill of what did not succeed; its id."""
        params = {"parentRunId": backfill_id, "strategy": "FROM_FAILURE"}
        launched = self.graphql(REEXECUTE_BACKFILL, {"params": params})["reexecutePartitionBackfill"]
        if launched["__typename"] != "LaunchBackfillSuccess":
            raise AssertionError(f"backfill not re-executed: {launched}")
        return str(launched["backfillId"])

    def launch_run(self, job: str, tags: Mapping[str, str]) -> str:
        """Launch a run of ``job`` with ``tags`` as the job page's "Launch run" does (it is queued); its id."""
        selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "jobName": job}
        metadata = {"tags": [{"key": key, "value": value} for key, value in tags.items()]}
        params = {"selector": selector, "runConfigData": {}, "executionMetadata": metadata}
        launched = self.graphql(LAUNCH_RUN, {"params": params})["launchRun"]
        if launched["__typename"] != "LaunchRunSuccess":
            raise AssertionError(f"run not launched: {launched}")
        return str(launched["run"]["runId"])

    def backfill_status(self, backfill_id: str) -> dict[str, Any]:
        return self.graphql(BACKFILL_STATUS, {"id": backfill_id})

    def wait_for_backfill(self, backfill_id: str, timeout_seconds: float) -> dict[str, Any]:
        """The backfill's status and runs once it has finished, whichever way."""
        return self.poll(
            lambda: self.backfill_status(backfill_id),
            lambda status: status["partitionBackfillOrError"]["status"] in FINISHED_BACKFILL,
            timeout_seconds,
            f"backfill {backfill_id} to finish",
        )

    def wait_for_daemon(self, daemon_type: str, timeout_seconds: float) -> None:
        """Until the daemon (``BACKFILL``, ``SENSOR``, ...) has heartbeat: its first loop is under way."""
        self.poll(
            lambda: self.graphql(DAEMON_HEALTH, {"type": daemon_type})["instance"]["daemonHealth"]["daemonStatus"],
            lambda status: status["lastHeartbeatTime"] is not None,
            timeout_seconds,
            f"the {daemon_type} daemon's first heartbeat",
        )

    def run_status(self, run_id: str) -> str:
        return str(self.graphql(RUN_STATUS, {"id": run_id})["runOrError"]["status"])

    def materialized_partitions(self, run_id: str) -> list[str]:
        """The partitions a run materialized, in the order the event log recorded them (as the UI lists them)."""
        run = self.graphql(RUN_MATERIALIZATIONS, {"id": run_id})["runOrError"]
        return [str(event["partition"]) for event in run["assetMaterializations"]]

    def runs_tagged(self, key: str, value: str) -> list[dict[str, Any]]:
        return self.graphql(RUNS_TAGGED, {"key": key, "value": value})["runsOrError"]["results"]

    def wait_for_finished_run(self, key: str, value: str, timeout_seconds: float) -> dict[str, Any]:
        """The first finished run carrying the tag ``key=value``."""
        runs = self.poll(
            lambda: [run for run in self.runs_tagged(key, value) if run["status"] in FINISHED_RUN],
            bool,
            timeout_seconds,
            f"a finished run tagged {key}={value}",
        )
        return runs[0]

    def sensor_ticks(self, sensor: str) -> list[dict[str, Any]]:
        """The sensor's latest ticks, newest first, each with its log lines as ``messages``."""
        selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "sensorName": sensor}
        found = self.graphql(SENSOR_TICKS, {"selector": selector})["sensorOrError"]
        ticks: list[dict[str, Any]] = found["sensorState"]["ticks"] if "sensorState" in found else []
        return [tick | {"messages": [event["message"] for event in tick["logEvents"]["events"]]} for tick in ticks]

    def answers(self) -> bool:
        """Whether the webserver answers a GraphQL query: the readiness probe of whatever serves the API."""
        try:
            return httpx.post(self.url, json={"query": "{ version }"}, timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def poll(self, read: Callable[[], T], done: Callable[[T], bool], timeout_seconds: float, what: str) -> T:
        """``read()`` every half second until ``done`` accepts its value; that value."""
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            self.require_running()
            value = read()
            if done(value):
                return value
            time.sleep(0.5)
        raise AssertionError(f"waited {timeout_seconds:.0f} s for {what}; {self.logs()}")


class DagsterDev(DagsterGraphQL):
    """``dagster dev -w workspace.yaml`` in ``home`` (its DAGSTER_HOME) with ``env``, on a free loopback port.

    ``command`` starts another form of it in ``home`` instead (plain ``dagster dev``, ``dg dev``);
    the port option is appended to it.
    """

    def __init__(
        self, home: Path, env: Mapping[str, str], log_path: Path, command: Sequence[str] | None = None
    ) -> None:
        self._home = home
        self._env = dict(env)
        self._log_path = log_path
        self._command = list(command or [str(DAGSTER), "dev", "-w", str(REPO / "workspace.yaml")])
        self._port = free_loopback_port()
        self._process: ServerProcess | None = None
        super().__init__(f"http://127.0.0.1:{self._port}/graphql")

    @property
    def pid(self) -> int:
        """The ``dagster dev`` process; webserver, daemon, code server and run workers descend from it."""
        if self._process is None:
            raise RuntimeError("dagster dev is not running")
        return self._process.pid

    def __enter__(self) -> DagsterDev:
        self._process = ServerProcess(
            "dagster dev",
            [*self._command, "-p", str(self._port)],
            self._log_path,
            owner=self,
            stop_signals=((signal.SIGTERM, STOP_TIMEOUT_SECONDS),),
            cwd=self._home,
            env=self._env,
        )
        try:
            self._process.wait_until_ready(self.answers, READY_TIMEOUT_SECONDS, f"answer GraphQL at {self.url}")
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> int | None:
        """SIGTERM to the process group (webserver, daemon, code server, run workers), SIGKILL after a
        minute; the exit code of ``dagster dev``."""
        if self._process is None:
            return None
        self._process.stop()
        return self._process.exit_code()

    def logs(self) -> str:
        return f"log: {self._log_path}"

    def require_running(self) -> None:
        if self._process is None:
            raise AssertionError("dagster dev is not running")
        code = self._process.exit_code()
        if code is not None:
            raise AssertionError(self._process.failure(f"dagster dev exited with code {code}"))
