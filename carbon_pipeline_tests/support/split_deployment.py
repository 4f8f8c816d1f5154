"""Dagster's multi-machine layout on one host: code server, webserver and daemon as three processes.

As on three machines, the processes share nothing but the PostgreSQL database that the DAGSTER_PG_*
variables name and the code server's gRPC port: each has its own DAGSTER_HOME holding a copy of
``deploy/dagster.yaml``, and only the code server (with the run workers it starts) gets the
pipeline's settings and secrets. The webserver and the daemon read the definitions from the code
server through a workspace file with a ``grpc_server`` entry. The webserver's GraphQL API drives
the deployment as the Dagster UI does.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from carbon_pipeline_tests.support.dagster_dev import REPO, DagsterGraphQL
from carbon_pipeline_tests.support.processes import (
    ServerProcess,
    accepts_connections,
    free_loopback_port,
    log_tail,
    stop_all,
)

LOCATION_NAME = "carbon_pipeline"
INSTANCE_FILE = REPO / "deploy" / "dagster.yaml"
READY_TIMEOUT_SECONDS = 120
# SIGTERM to each process group: the process and whatever it started (the code server's run workers).
STOP_SIGNALS = ((signal.SIGTERM, 30.0),)
# Variables a deployment reads: a process only gets those given to it, never the caller's own.
DEPLOYMENT_PREFIXES = ("DAGSTER_", "CARBON_", "WATTTIME_", "INFLUXDB_")

WORKSPACE = """
{
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
    ... on PythonError { message }
  }
}"""
DAEMON_HEALTH = "{ instance { daemonHealth { allDaemonStatuses { daemonType required healthy lastHeartbeatTime } } } }"


@dataclass(frozen=True)
class _Launch:
    """How one of the three processes is started."""

    name: str
    command: list[str]
    home: Path
    env: dict[str, str]
    log_path: Path


class SplitDeployment(DagsterGraphQL):
    """Code server, webserver and daemon of one deployment, each a process (group) of its own.

    ``instance_env`` holds the DAGSTER_PG_* variables every process needs to reach the instance;
    ``settings`` the pipeline's variables (DAGSTER_DEPLOYMENT, CARBON_*, WATTTIME_*, INFLUXDB_*),
    given to the code server alone. Homes, the workspace file and the logs live in ``workdir``.
    Entering starts the three and returns once the webserver answers GraphQL, has loaded the code
    location and sees the daemon healthy; leaving stops them with their process groups. When they
    fail to start or the block raises, the end of every log is printed (pytest shows it with the
    failure); ``logs()`` gives it at any time.
    """

    def __init__(
        self,
        workdir: Path,
        instance_env: Mapping[str, str],
        settings: Mapping[str, str],
        instance_file: Path = INSTANCE_FILE,
    ) -> None:
        self.workdir = workdir
        self.instance_file = instance_file
        self.code_server_port = free_loopback_port()
        self.webserver_port = free_loopback_port()
        super().__init__(f"http://127.0.0.1:{self.webserver_port}/graphql")
        self.workspace_path = workdir / "workspace.yaml"
        bin_dir = Path(sys.executable).parent
        workspace = str(self.workspace_path)
        commands = {
            "code_server": [
                str(bin_dir / "dagster"),
                *("code-server", "start", "-m", "carbon_pipeline.definitions"),
                *("-h", "127.0.0.1", "-p", str(self.code_server_port)),
            ],
            "webserver": [
                str(bin_dir / "dagster-webserver"),
                *("-w", workspace, "-h", "127.0.0.1", "-p", str(self.webserver_port)),
            ],
            "daemon": [str(bin_dir / "dagster-daemon"), "run", "-w", workspace],
        }
        inherited = {key: value for key, value in os.environ.items() if not key.startswith(DEPLOYMENT_PREFIXES)}
        self._launches: dict[str, _Launch] = {}
        for name, command in commands.items():
            home = workdir / "homes" / name
            env = inherited | dict(instance_env) | {"DAGSTER_HOME": str(home)}
            if name == "code_server":
                env |= dict(settings)
            self._launches[name] = _Launch(name, command, home, env, workdir / "logs" / f"{name}.log")
        self._processes: dict[str, ServerProcess] = {}

    def __enter__(self) -> SplitDeployment:
        (self.workdir / "logs").mkdir(parents=True)
        for launch in self._launches.values():
            launch.home.mkdir(parents=True)
            shutil.copy(self.instance_file, launch.home / "dagster.yaml")
        grpc_server = {"host": "127.0.0.1", "port": self.code_server_port, "location_name": LOCATION_NAME}
        self.workspace_path.write_text(yaml.safe_dump({"load_from": [{"grpc_server": grpc_server}]}))
        try:
            self._start_code_server()
            webserver = self._start("webserver")
            self._start("daemon")
            webserver.wait_until_ready(self.answers, READY_TIMEOUT_SECONDS, f"answer GraphQL at {self.url}")
            self.poll(self._location_loaded, bool, READY_TIMEOUT_SECONDS, f"code location {LOCATION_NAME}")
            self.poll(self._daemon_healthy, bool, READY_TIMEOUT_SECONDS, "a healthy daemon")
        except BaseException:
            self._stop(failed=True)
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop(failed=exc_type is not None)

    def require_running(self) -> None:
        for process in self._processes.values():
            code = process.exit_code()
            if code is not None:
                raise AssertionError(f"{process.name} exited with code {code}; {self.logs()}")

    def logs(self) -> str:
        return "\n".join(
            f"--- {launch.name} ({launch.log_path}), last lines:\n{log_tail(launch.log_path)}"
            for launch in self._launches.values()
        )

    def kill_code_server(self) -> None:
        """SIGKILL the code server with its process group (the run workers it started), as a host restart or
        a killed container does, then start it again on the same port, as the host's service manager would."""
        self._kill("code_server")
        self._start_code_server()

    def kill_daemon(self) -> None:
        """SIGKILL the daemon with its process group, as a killed container does, then start it again as the
        host's service manager would; returns once the restarted daemon has sent its first heartbeats."""
        killed_at = time.time()
        self._kill("daemon")
        self._start("daemon")
        self.poll(lambda: self._daemon_healthy(after=killed_at), bool, READY_TIMEOUT_SECONDS, "the restarted daemon")

    def _kill(self, name: str) -> None:
        dead = self._processes[name]
        os.killpg(dead.pid, signal.SIGKILL)
        dead.stop()

    def _start_code_server(self) -> None:
        # `dagster code-server start` loads the definitions before it binds its port.
        self._start("code_server").wait_until_ready(
            accepts_connections(self.code_server_port), READY_TIMEOUT_SECONDS, f"listen on port {self.code_server_port}"
        )

    def _start(self, name: str) -> ServerProcess:
        launch = self._launches[name]
        process = ServerProcess(
            name,
            launch.command,
            launch.log_path,
            owner=self,
            stop_signals=STOP_SIGNALS,
            cwd=launch.home,
            env=launch.env,
        )
        self._processes[name] = process
        return process

    def _location_loaded(self) -> bool:
        workspace = self.graphql(WORKSPACE)["workspaceOrError"]
        if workspace["__typename"] != "Workspace":
            raise AssertionError(f"workspace failed to load: {workspace}")
        entries = {entry["name"]: entry for entry in workspace["locationEntries"]}
        entry = entries.get(LOCATION_NAME)
        if entry is None or entry["loadStatus"] != "LOADED":
            return False
        location: dict[str, Any] = entry["locationOrLoadError"]
        if location["__typename"] != "RepositoryLocation":
            raise AssertionError(f"code location {LOCATION_NAME} failed to load: {location.get('message')}")
        return True

    def _daemon_healthy(self, after: float = 0.0) -> bool:
        """Every required daemon healthy, each with a heartbeat later than ``after`` (seconds since the epoch)."""
        statuses = self.graphql(DAEMON_HEALTH)["instance"]["daemonHealth"]["allDaemonStatuses"]
        required = [status for status in statuses if status["required"]]
        return all(status["healthy"] and (status["lastHeartbeatTime"] or 0) > after for status in required)

    def _stop(self, failed: bool) -> None:
        """Stop the three at once (the daemon first, so it launches nothing more), each with its process group."""
        stop_all(self._processes[name] for name in ("daemon", "webserver", "code_server") if name in self._processes)
        if failed:
            print(f"split deployment logs in {self.workdir / 'logs'}\n{self.logs()}")
