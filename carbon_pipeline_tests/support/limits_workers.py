"""Several real processes on one WattTime account at once, each with its own client, and what the server saw.

``python -m carbon_pipeline_tests.support.limits_workers BASE_URL FOLDER REQUESTS LOGIN_LIMIT LOGIN_WINDOW``
builds one client (FOLDER ``-`` for in-memory limits), says ``ready``, waits for ``go`` on stdin, then sends
REQUESTS ``/v3/my-access`` calls from several threads. The go line lets every worker finish importing before
any sends, so the workers really start together.
"""

from __future__ import annotations

import bisect
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carbon_pipeline.watttime.client import WattTimeClient
from carbon_pipeline.watttime.endpoints import LOGIN_PATH
from carbon_pipeline.watttime.simulator import SIMULATOR_PASSWORD, SIMULATOR_USERNAME

THREADS_PER_WORKER = 4
WORKER_TIMEOUT_SECONDS = 60.0
IN_MEMORY = "-"


@dataclass(frozen=True)
class Arrivals:
    """When each request reached the simulator, as sorted `time.monotonic()` moments of its process."""

    requests: list[float]  # every request, logins included: a login spends a request permit too
    logins: list[float]

    @classmethod
    def from_stats(cls, stats: dict[str, Any]) -> Arrivals:
        arrivals = stats["arrivals"]
        return cls(sorted(moment for moments in arrivals.values() for moment in moments), sorted(arrivals[LOGIN_PATH]))


def busiest(moments: Sequence[float], window_seconds: float) -> int:
    """The most moments within any window of `window_seconds` (moments sorted)."""
    ends = (bisect.bisect_left(moments, moment + window_seconds) - index for index, moment in enumerate(moments))
    return max(ends, default=0)


def run_workers(
    base_url: str,
    folders: Sequence[Path | None],
    *,
    requests_per_worker: int,
    login_limit: int = 100,
    login_window_seconds: float = 300.0,
) -> None:
    """One worker process per entry of `folders` (None: in-memory limits), all released at once."""
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                __name__,
                base_url,
                str(folder) if folder is not None else IN_MEMORY,
                str(requests_per_worker),
                str(login_limit),
                str(login_window_seconds),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for folder in folders
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.close()
        for worker in workers:
            assert worker.wait(WORKER_TIMEOUT_SECONDS) == 0, f"limits worker exited with {worker.returncode}"
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
            if worker.stdout is not None:
                worker.stdout.close()


def _work(base_url: str, folder: str, requests: int, login_limit: int, login_window_seconds: float) -> None:
    client = WattTimeClient(
        SIMULATOR_USERNAME,
        SIMULATOR_PASSWORD,
        base_url,
        timeout_seconds=10.0,
        limits_folder=None if folder == IN_MEMORY else Path(folder),
        login_limit=login_limit,
        login_window_seconds=login_window_seconds,
    )
    with client:
        print("ready", flush=True)
        sys.stdin.readline()
        with ThreadPoolExecutor(THREADS_PER_WORKER) as pool:
            list(pool.map(lambda _: client.my_access(), range(requests)))


if __name__ == "__main__":
    _work(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
