"""Dagster's multi-machine layout on one host: code server, webserver and daemon as three processes.

As on three machines, the processes share nothing but the PostgreSQL database that the DAGSTER_PG_*
variables name and the code server's gRPC port: each has its own DAGSTER_HOME holding a copy of
``deploy/dagster.yaml``, and only the code server (with the run workers it starts) gets the
pipeline's settings and secrets. The webserver and the daemon read the definitions from the code
server through a workspace file with a ``grpc_server`` entry. The webserver's GraphQL API drives
the deployment as the Dagster UI does.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from carbon_pipeline_tests.support.dagster_dev import REPO, DagsterGraphQL
from carbon_pipeline_tests.support.influxdb_server import free_loopback_port

LOCATION_NAME = "carbon_pipeline"
INSTANCE_FILE = REPO / "deploy" / "dagster.yaml"
READY_TIMEOUT_SECONDS = 120
STOP_TIMEOUT_SECONDS = 30
LOG_TAIL_LINES = 40
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
DAEMON_HEALTH = "{ instance { daemonHealth { allDaemonStatuses { daemonType required healthy } } } }"


@dataclass
class _Process:
    name: str
    command: list[str]
    home: Path
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.popen = subprocess.Popen(
                self.command,
                cwd=self.home,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def exit_code(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def terminate(self) -> None:
        """SIGTERM to the process group: the process and whatever it started (the code server's run workers)."""
        if self.popen is not None:
            _signal_group(self.popen.pid, signal.SIGTERM)

    def reap(self, deadline: float) -> None:
        """Wait for the process until ``deadline`` (monotonic), then SIGKILL whatever is left of its group."""
        if self.popen is None:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
        _signal_group(self.popen.pid, signal.SIGKILL)
        self.popen.wait()

    def tail(self) -> str:
        if not self.log_path.exists():
            return "(no log)"
        lines = self.log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        return "\n".join(lines)


def _signal_group(group: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signum)


def _wait_for_port(port: int, process: _Process, timeout_seconds: float) -> None:
    """Return once ``process`` accepts TCP connections on loopback ``port``.

    ``dagster code-server start`` loads the definitions before it binds its port.
    """
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if process.exit_code() is not None:
            raise AssertionError(f"{process.name} exited with code {process.exit_code()}:\n{process.tail()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{process.name} did not listen on port {port} in {timeout_seconds:.0f} s:\n{process.tail()}")


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

    def __init__(self, workdir: Path, instance_env: Mapping[str, str], settings: Mapping[str, str]) -> None:
        self.workdir = workdir
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
        self._processes: dict[str, _Process] = {}
        for name, command in commands.items():
            home = workdir / "homes" / name
            env = inherited | dict(instance_env) | {"DAGSTER_HOME": str(home)}
            if name == "code_server":
                env |= dict(settings)
            self._processes[name] = _Process(name, command, home, env, workdir / "logs" / f"{name}.log")

    def __enter__(self) -> SplitDeployment:
        (self.workdir / "logs").mkdir(parents=True)
        for process in self._processes.values():
            process.home.mkdir(parents=True)
            shutil.copy(INSTANCE_FILE, process.home / "dagster.yaml")
        grpc_server = {"host": "127.0.0.1", "port": self.code_server_port, "location_name": LOCATION_NAME}
        self.workspace_path.write_text(yaml.safe_dump({"load_from": [{"grpc_server": grpc_server}]}))
        try:
            code_server = self._processes["code_server"]
            code_server.start()
            _wait_for_port(self.code_server_port, code_server, READY_TIMEOUT_SECONDS)
            self._processes["webserver"].start()
            self._processes["daemon"].start()
            self.wait_until_answering(READY_TIMEOUT_SECONDS)
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
            f"--- {process.name} ({process.log_path}), last lines:\n{process.tail()}"
            for process in self._processes.values()
        )

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

    def _daemon_healthy(self) -> bool:
        statuses = self.graphql(DAEMON_HEALTH)["instance"]["daemonHealth"]["allDaemonStatuses"]
        return all(status["healthy"] for status in statuses if status["required"])

    def _stop(self, failed: bool) -> None:
        """Stop the three at once (the daemon first, so it launches nothing more), each with its process group."""
        order = [self._processes[name] for name in ("daemon", "webserver", "code_server")]
        for process in order:
            process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for process in order:
            process.reap(deadline)
        if failed:
            print(f"split deployment logs in {self.workdir / 'logs'}\n{self.logs()}")
