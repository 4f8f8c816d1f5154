"""The command lines of a process and all its descendants, sampled from /proc while they run, for the secret scan.

A secret passed as an argument is visible to every user of the machine, so the tests scan every command line
the pipeline's processes had, not only the ones alive at the end.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from carbon_pipeline_tests.support.secret_scan import Finding, SecretScanner

SAMPLE_INTERVAL_SECONDS = 0.05


def process_tree(root_pid: int) -> list[int]:
    """``root_pid`` and all of its living descendants, from the parent links in /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            parent = _parent_pid(entry)
            if parent is not None:
                children.setdefault(parent, []).append(int(entry.name))
    tree, pending = [], [root_pid]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending += children.get(pid, [])
    return tree


def _parent_pid(proc_entry: Path) -> int | None:
    try:
        stat = (proc_entry / "stat").read_text()
    except OSError:  # the process ended while we looked
        return None
    # The command name (2nd field) may contain spaces and parentheses; the fields after its last ")" do not.
    return int(stat.rsplit(")", 1)[1].split()[1])


def _read_proc(pid: int, name: str) -> bytes | None:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return None


@dataclass
class ProcessTreeSampler:
    """Records the command line of every process under ``root_pid`` for as long as it runs.

    Run workers live for seconds, so the tree is sampled every few tens of milliseconds. The
    environment of each process is scanned too, but only as a control: it must hold the secrets
    (that is how they reach the code), which shows the sampler saw the processes that use them.
    """

    root_pid: int
    scanner: SecretScanner
    command_lines: dict[tuple[int, bytes], None] = field(default_factory=dict)
    secrets_in_environments: dict[int, set[str]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> ProcessTreeSampler:
        self._thread = threading.Thread(target=self._sample_until_stopped, name="process-tree-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def findings(self, scanner: SecretScanner | None = None) -> list[Finding]:
        """The sampled command lines' findings, by ``scanner`` when given: one that also knows secrets
        issued while the processes ran (WattTime tokens)."""
        scanner = scanner or self.scanner
        return [
            finding
            for (pid, command), _ in self.command_lines.items()
            for finding in scanner.scan_bytes(f"command line of pid {pid}: {self._shown(command)}", command)
        ]

    def commands(self) -> list[str]:
        """The sampled command lines, redacted and shortened, for assertion messages."""
        return [self._shown(command) for _, command in self.command_lines]

    def _shown(self, command: bytes, limit: int = 160) -> str:
        text = self.scanner.redacted(command.replace(b"\0", b" ")).strip()
        return text if len(text) <= limit else text[:limit] + "..."

    def _sample_until_stopped(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(SAMPLE_INTERVAL_SECONDS)

    def sample(self) -> None:
        for pid in process_tree(self.root_pid):
            command = _read_proc(pid, "cmdline")
            if command:
                self.command_lines[(pid, command)] = None
            environment = _read_proc(pid, "environ")
            if environment:
                found = {finding.secret for finding in self.scanner.scan_bytes(f"environment of {pid}", environment)}
                self.secrets_in_environments.setdefault(pid, set()).update(found)
