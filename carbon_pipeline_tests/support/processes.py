"""The life of a server process the tests start: launch with a log file, wait until it answers, stop it.

Every server the tests run (influxd, postgres, ``dagster dev``, the split deployment's three
processes) is started, awaited, logged and stopped the same way, so a failure reads the same
whichever server it was: what was run, why it is not ready, and the end of its log.

A process gets a session (and so a process group) of its own, so stopping it also stops whatever
it started (run workers, backends) and a Ctrl-C in the terminal reaches only the test runner, whose
cleanup then stops the servers in order. The leader is never reaped before the last signal to its
group: until then its pid, which is also the group's id, cannot be taken by an unrelated process.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
LOG_TAIL_LINES = 40
DEFAULT_STOP_SIGNALS: tuple[tuple[signal.Signals, float], ...] = ((signal.SIGTERM, 10.0),)
_POLL_INTERVAL_SECONDS = 0.02
_CONNECT_TIMEOUT_SECONDS = 0.25  # loopback answers in milliseconds; a port held by someone else never does


class ProcessStartError(RuntimeError):
    """A server process exited or did not become ready in time; the message ends with its log tail."""


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now.

    The port is released before the server binds it, so another process could take it in between;
    that is rare on a test machine and the failure is loud (the server exits with "address already
    in use" and its log tail says so).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def accepts_connections(port: int, host: str = LOOPBACK) -> Callable[[], bool]:
    """A readiness probe: true once something accepts TCP connections on ``host:port``."""

    def probe() -> bool:
        try:
            socket.create_connection((host, port), timeout=_CONNECT_TIMEOUT_SECONDS).close()
        except OSError:
            return False
        return True

    return probe


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file, or a note that there is none yet."""
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class ServerProcess:
    """One launched process (and its group), appending its stdout and stderr to ``log_path``.

    ``stop_signals`` are tried in order, each given its grace period in seconds, before SIGKILL
    goes to the whole group; they go to the group too unless ``signal_group`` is false (for a
    server that signals its own children, such as postgres). The process is stopped by
    :meth:`stop`, when ``owner`` is garbage collected, and at interpreter exit, so none outlives
    the test run; ``owner`` is the object that launched it and must not be referenced by it.
    Extra keyword arguments go to :class:`subprocess.Popen` (``cwd``, ``env``, ``user``...).
    """

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        log_path: Path,
        *,
        owner: object,
        stop_signals: Sequence[tuple[signal.Signals, float]] = DEFAULT_STOP_SIGNALS,
        signal_group: bool = True,
        **popen_options: Any,
    ) -> None:
        self.name = name
        self.command = list(command)
        self.log_path = log_path
        self._stop_signals = tuple(stop_signals)
        self._signal_group = signal_group
        self._signals_sent = 0
        with log_path.open("ab") as log:
            self._popen = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **popen_options,
            )
        self._stop = weakref.finalize(owner, self._shut_down)

    @property
    def pid(self) -> int:
        """The leader's pid, which is also its process group's id."""
        return self._popen.pid

    def exit_code(self) -> int | None:
        """The exit code (negative: killed by that signal) once the leader has exited, else None."""
        if self._popen.returncode is not None:
            return self._popen.returncode
        try:
            info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:  # reaped elsewhere: Popen records what it can
            return self._popen.wait()
        if info is None:
            return None
        return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status

    def wait_until_ready(
        self,
        ready: Callable[[], bool],
        timeout_seconds: float,
        what: str,
        retry_on: tuple[type[Exception], ...] = (),
    ) -> None:
        """Poll ``ready()`` until it is true; raise :class:`ProcessStartError` if the process exits first
        or ``timeout_seconds`` pass. ``what`` completes "<name> did not ..." in that error. Exceptions
        of the ``retry_on`` types mean "not yet"; the last one is quoted in the error."""
        deadline = time.monotonic() + timeout_seconds
        last_error = ""
        while (code := self.exit_code()) is None:
            try:
                if ready():
                    return
            except retry_on as error:
                last_error = f" (last: {str(error).strip()})"
            if time.monotonic() > deadline:
                raise ProcessStartError(
                    self.failure(f"{self.name} did not {what} within {timeout_seconds:g} s{last_error}")
                )
            time.sleep(_POLL_INTERVAL_SECONDS)
        raise ProcessStartError(self.failure(f"{self.name} exited with code {code}"))

    def failure(self, reason: str) -> str:
        """``reason`` with the command that was run and the end of its log, for an error message."""
        return (
            f"{reason}\ncommand: {shlex.join(self.command)}\n"
            f"log {self.log_path}, last lines:\n{log_tail(self.log_path)}"
        )

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return log_tail(self.log_path, lines)

    def terminate(self) -> None:
        """Send the first stop signal without waiting, so several processes can stop at once."""
        if self._signals_sent == 0 and self._stop.alive:
            self._send(self._stop_signals[0][0])
            self._signals_sent = 1

    def stop(self) -> None:
        """Stop the process and its group and reap it; calling it again does nothing."""
        self._stop()

    def _shut_down(self) -> None:
        for index, (signum, grace) in enumerate(self._stop_signals):
            if self._exited_within(0):
                break
            if index >= self._signals_sent:
                self._send(signum)
                self._signals_sent = index + 1
            if self._exited_within(grace):
                break
        # Whatever the leader left behind in its group goes too; the leader is still unreaped here.
        self._send(signal.SIGKILL, group=True)
        self._popen.wait()

    def _exited_within(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while self.exit_code() is None:
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_INTERVAL_SECONDS)
        return True

    def _send(self, signum: signal.Signals, group: bool | None = None) -> None:
        try:
            if self._signal_group if group is None else group:
                os.killpg(self.pid, signum)
            else:
                os.kill(self.pid, signum)
        except ProcessLookupError:
            pass  # the group is already empty


def stop_all(processes: Iterable[ServerProcess]) -> None:
    """Stop several processes at once: all get their first stop signal, then each is waited for in turn."""
    processes = list(processes)
    for process in processes:
        process.terminate()
    for process in processes:
        process.stop()
