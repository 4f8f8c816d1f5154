"""Tests of the server-process lifecycle every harness uses: readiness, failure reports, stopping the whole group."""

from __future__ import annotations

import gc
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from carbon_pipeline_tests.support.processes import (
    ProcessStartError,
    ServerProcess,
    accepts_connections,
    free_loopback_port,
    stop_all,
)

# A server stand-in: says it started, then listens on the port in argv[1] until stopped.
LISTENER = """
import socket, sys
print("listener up", flush=True)
server = socket.create_server(("127.0.0.1", int(sys.argv[1])))
while True:
    server.accept()[0].close()
"""
# Starts a child in its own (the parent's) process group, prints its pid, then waits.
PARENT_WITH_CHILD = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print(child.pid, flush=True)
time.sleep(600)
"""
SLEEPER = "import time; time.sleep(600)"
IGNORES_SIGTERM = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ignoring SIGTERM", flush=True)
time.sleep(600)
"""


class Owner:
    """Whatever starts a process; the process lives no longer than it does."""


def python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, exited but not reaped by its parent, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def ends(pid: int) -> bool:
    """Whether ``pid`` stops running soon: a signalled process that is not our child dies on its own time."""
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    return not alive(pid)


def wait_for_line(path: Path, process: ServerProcess) -> str:
    process.wait_until_ready(lambda: path.read_text().strip() != "", 30, "print its first line")
    return path.read_text().splitlines()[0]


def test_ready_once_the_probe_answers_and_stopped_with_sigterm(tmp_path: Path) -> None:
    port = free_loopback_port()
    log = tmp_path / "listener.log"
    owner = Owner()
    process = ServerProcess("listener", python(LISTENER, str(port)), log, owner=owner)

    process.wait_until_ready(accepts_connections(port), 30, f"listen on {port}")
    assert process.exit_code() is None
    assert os.getpgid(process.pid) == process.pid  # a process group of its own
    process.stop()

    assert process.exit_code() == -signal.SIGTERM
    assert not accepts_connections(port)()
    assert "listener up" in log.read_text()


def test_exit_before_ready_names_the_code_the_command_and_the_log_tail(tmp_path: Path) -> None:
    code = "import sys; print('cannot bind: address already in use', flush=True); sys.exit(3)"
    owner = Owner()
    process = ServerProcess("fake-server", python(code), tmp_path / "fake.log", owner=owner)

    with pytest.raises(ProcessStartError) as raised:
        process.wait_until_ready(lambda: False, 30, "answer")

    message = str(raised.value)
    assert message.startswith("fake-server exited with code 3\n")
    assert f"command: {sys.executable} -c" in message
    assert message.rstrip().endswith("cannot bind: address already in use")
    process.stop()


def test_a_deadline_passed_quotes_the_last_probe_error(tmp_path: Path) -> None:
    owner = Owner()
    process = ServerProcess("sleeper", python(SLEEPER), tmp_path / "s.log", owner=owner)

    def refuses() -> bool:
        raise ConnectionRefusedError("connection refused on 127.0.0.1:1")

    try:
        with pytest.raises(ProcessStartError, match=r"sleeper did not answer within 0.2 s \(last: connection refused"):
            process.wait_until_ready(refuses, 0.2, "answer", retry_on=(ConnectionRefusedError,))
        assert process.exit_code() is None  # the caller decides what to do with a process that is late
    finally:
        process.stop()


def test_stop_ends_what_the_process_started_too(tmp_path: Path) -> None:
    log = tmp_path / "parent.log"
    owner = Owner()
    process = ServerProcess("parent", python(PARENT_WITH_CHILD), log, owner=owner)
    child = int(wait_for_line(log, process))
    assert alive(child)

    process.stop()

    assert process.exit_code() == -signal.SIGTERM
    assert ends(child)


def test_what_the_leader_leaves_behind_in_its_group_is_killed(tmp_path: Path) -> None:
    log = tmp_path / "parent.log"
    owner = Owner()
    # SIGTERM to the leader alone, as for a server that stops its own children: this one does not.
    process = ServerProcess("parent", python(PARENT_WITH_CHILD), log, owner=owner, signal_group=False)
    child = int(wait_for_line(log, process))

    process.stop()

    assert process.exit_code() == -signal.SIGTERM
    assert ends(child)


def test_a_process_ignoring_sigterm_is_killed_after_its_grace(tmp_path: Path) -> None:
    log = tmp_path / "stubborn.log"
    owner = Owner()
    process = ServerProcess(
        "stubborn", python(IGNORES_SIGTERM), log, owner=owner, stop_signals=((signal.SIGTERM, 0.2),)
    )
    wait_for_line(log, process)

    process.stop()

    assert process.exit_code() == -signal.SIGKILL


def test_stop_all_signals_every_process_before_waiting(tmp_path: Path) -> None:
    owner = Owner()
    processes = [ServerProcess(f"sleeper {n}", python(SLEEPER), tmp_path / f"{n}.log", owner=owner) for n in range(3)]

    stop_all(processes)

    assert [process.exit_code() for process in processes] == [-signal.SIGTERM] * 3


def test_the_process_ends_with_its_owner(tmp_path: Path) -> None:
    owner = Owner()
    process = ServerProcess("sleeper", python(SLEEPER), tmp_path / "s.log", owner=owner)

    del owner
    gc.collect()

    assert process.exit_code() == -signal.SIGTERM
    assert not alive(process.pid)


def test_stopping_twice_is_harmless(tmp_path: Path) -> None:
    owner = Owner()
    process = ServerProcess("sleeper", python(SLEEPER), tmp_path / "s.log", owner=owner)
    process.stop()
    process.stop()
    assert process.exit_code() == -signal.SIGTERM
