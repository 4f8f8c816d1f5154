"""`carbon-pipeline simulator`, the standalone WattTime simulator a user starts, as a process of a test's own."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

CARBON_PIPELINE = str(Path(sys.executable).parent / "carbon-pipeline")


@contextmanager
def standalone_simulator(options: Sequence[str], env: Mapping[str, str]) -> Iterator[tuple[str, list[str]]]:
    """`carbon-pipeline simulator` on a free port: its base URL, and its banner (filled in once it stopped)."""
    command = [CARBON_PIPELINE, "simulator", "--port", "0", *options]
    with subprocess.Popen(
        command, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as process:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        banner = [first_line]
        try:
            yield first_line.split()[-1], banner
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=10)
        banner.append(process.stdout.read())
    assert process.returncode == 0
