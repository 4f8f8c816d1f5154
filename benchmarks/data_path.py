"""Data-path benchmark: fetch, validate, serialize and write a span of one region, stage by stage.

Runs the production code (WattTime client, pandera validation, line-protocol serializer, InfluxDB
resource) against the WattTime simulator and a real InfluxDB server on loopback, then POSTs the same
lines again with a bare HTTP client to the same server: the floor our write path is compared with.
The simulator runs as a process of its own, so that its CPU time and its GIL are not charged to the
fetch. Dagster is not involved; its bookkeeping is measured by the backfill benchmarks.

    python -m benchmarks.data_path --days 365 --latency-ms 200
"""

from __future__ import annotations

import argparse
import logging
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from time import perf_counter, process_time
from typing import Any, TypeVar

import httpx
import pandas as pd

from carbon_pipeline.partitions import RegionWindow
from carbon_pipeline.rate_limits import spaced_rate
from carbon_pipeline.sinks.influxdb import MAX_LINES_PER_REQUEST, PRECISION, InfluxDBResource
from carbon_pipeline.sinks.line_protocol import carbon_intensity_lines
from carbon_pipeline.validation import data_period, moer_frame, require_complete, validate_moer_frame
from carbon_pipeline.watttime.replies import HistoricalChunk
from carbon_pipeline.watttime.resource import WattTimeResource
from carbon_pipeline.watttime.simulator import SIMULATOR_PASSWORD, SIMULATOR_USERNAME
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.support.influxdb_shim import InfluxDBShim

REGION = "CAISO_NORTH"
TOKEN = "benchmark-token"
SIMULATOR_BANNER = "WattTime v3 simulator at "
SIMULATOR_STOP_SECONDS = 10
T = TypeVar("T")


@dataclass(frozen=True)
class DataPathFigures:
    points: int
    watttime_calls: int
    watttime_logins: int
    fetch_seconds: float
    fetch_cpu_seconds: float
    rate_limit_floor_seconds: float
    validate_seconds: float
    serialize_seconds: float
    write_seconds: float
    raw_post_seconds: float

    @property
    def data_path_seconds(self) -> float:
        return self.fetch_seconds + self.validate_seconds + self.serialize_seconds + self.write_seconds

    @property
    def points_per_second(self) -> float:
        return self.points / self.data_path_seconds

    @property
    def write_vs_raw_post(self) -> float:
        return self.write_seconds / self.raw_post_seconds

    def rows(self) -> list[tuple[str, str]]:
        return [
            ("points", f"{self.points:,}"),
            ("WattTime data calls", str(self.watttime_calls)),
            ("WattTime logins", str(self.watttime_logins)),
            ("fetch (s)", f"{self.fetch_seconds:.2f}"),
            ("fetch, client CPU (s)", f"{self.fetch_cpu_seconds:.2f}"),
            ("rate-limit floor (s)", f"{self.rate_limit_floor_seconds:.2f}"),
            ("validate (s)", f"{self.validate_seconds:.2f}"),
            ("serialize (s)", f"{self.serialize_seconds:.2f}"),
            ("write, our resource (s)", f"{self.write_seconds:.2f}"),
            ("write, raw HTTP POST (s)", f"{self.raw_post_seconds:.2f}"),
            ("our write / raw POST", f"{self.write_vs_raw_post:.2f}x"),
            ("data path (s)", f"{self.data_path_seconds:.2f}"),
            ("data path points/s", f"{self.points_per_second:,.0f}"),
        ]


def measure_data_path(days: int, latency_seconds: float) -> DataPathFigures:
    """One region, ``days`` days ending at the last midnight, through every stage, twice written."""
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    window = RegionWindow(REGION, end - timedelta(days=days), end)
    with (
        simulator_process(latency_seconds) as base_url,
        InfluxDBServer() as influxdb,
        InfluxDBShim(influxdb.url, TOKEN) as shim,
    ):
        resource = WattTimeResource(username=SIMULATOR_USERNAME, password=SIMULATOR_PASSWORD, base_url=base_url)
        with resource.open_client(logging.getLogger("benchmark")) as client:
            cpu_before = process_time()
            chunks, fetch = _timed(lambda: client.historical(window.region, window.start, window.end))
            fetch_cpu = process_time() - cpu_before
        calls, logins = simulator_counts(base_url)
        frame, validate = _timed(lambda: _validated(window, chunks))
        lines, serialize = _timed(lambda: carbon_intensity_lines(frame, signal_type="co2_moer", source="watttime"))
        influxdb.create_database("ours")
        _, write = _timed(lambda: _write(shim.url, "ours", lines))
        influxdb.create_database("raw")
        _, raw = _timed(lambda: raw_post(shim.url, "raw", lines))
        _require_same_count(influxdb, len(lines))
    floor = rate_limit_floor_seconds(calls + logins, resource.requests_per_second)
    return DataPathFigures(len(lines), calls, logins, fetch, fetch_cpu, floor, validate, serialize, write, raw)


def rate_limit_floor_seconds(requests: int, requests_per_second: float) -> float:
    """The least time the client's limit lets ``requests`` requests take from first to last.

    The client spaces its permits (one every 110 ms at 10/s, one every 2.2 s at 0.5/s), so each request after
    the first waits one spacing, however fast the server answers.
    """
    return max(0, requests - 1) * spaced_rate(requests_per_second).interval / 1000


@contextmanager
def simulator_process(latency_seconds: float, synthetic_regions: int = 0) -> Iterator[str]:
    """`python -m carbon_pipeline.watttime.simulator` on a free port, publishing at once; yields its base URL."""
    command = [
        sys.executable,
        "-m",
        "carbon_pipeline.watttime.simulator",
        "--port",
        "0",
        "--lag-seconds",
        "0",
        "--latency-seconds",
        str(latency_seconds),
        "--synthetic-regions",
        str(synthetic_regions),
    ]
    with banner_process(command, SIMULATOR_BANNER) as base_url:
        yield base_url


@contextmanager
def banner_process(command: Sequence[str], banner_start: str) -> Iterator[str]:
    """A simulator `command` whose first line is `banner_start` and its URL; yields the URL, then stops it."""
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as process:
        try:
            assert process.stdout is not None
            banner = process.stdout.readline()
            if not banner.startswith(banner_start):
                raise RuntimeError(f"the simulator did not start (exit code {process.poll()}, printed {banner!r})")
            yield banner.removeprefix(banner_start).strip()
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=SIMULATOR_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def simulator_stats(base_url: str) -> dict[str, Any]:
    """What the simulator counted and logged so far (see `SimulatorState.stats`)."""
    return httpx.get(f"{base_url}/_simulator/stats", timeout=10).raise_for_status().json()


def simulator_counts(base_url: str) -> tuple[int, int]:
    """Data calls and logins as the simulator counted them, retries included."""
    stats = simulator_stats(base_url)
    return stats["requests"].get("/v3/historical", 0), stats["logins"]


def raw_post(url: str, database: str, lines: Sequence[str]) -> None:
    """The same requests our resource sends, with nothing but an HTTP client: the write floor."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as http:
        for offset in range(0, len(lines), MAX_LINES_PER_REQUEST):
            body = "\n".join(lines[offset : offset + MAX_LINES_PER_REQUEST])
            response = http.post("/api/v3/write_lp", params={"db": database, "precision": PRECISION}, content=body)
            response.raise_for_status()


def _validated(window: RegionWindow, chunks: list[HistoricalChunk]) -> pd.DataFrame:
    frame = validate_moer_frame(window, moer_frame(window, chunks))
    require_complete(window, frame, data_period(window, chunks))
    return frame


def _write(url: str, database: str, lines: Sequence[str]) -> None:
    """Through the resource as a run uses it, connection closed at the end as Dagster's teardown does."""
    resource = InfluxDBResource(host=url, token=TOKEN, database=database)
    try:
        resource.write_lines(lines)
    finally:
        resource.teardown_after_execution(None)


def _require_same_count(influxdb: InfluxDBServer, expected: int) -> None:
    for database in ("ours", "raw"):
        rows = influxdb.query("SELECT count(moer_lbs_per_mwh) FROM carbon_intensity", database)
        stored = rows[0]["count"] if rows else 0
        if stored != expected:
            raise AssertionError(f"{database}: {stored} points stored, {expected} written")


def _timed(step: Callable[[], T]) -> tuple[T, float]:
    started = perf_counter()
    result = step()
    return result, perf_counter() - started


def table(rows: Sequence[tuple[str, str]]) -> str:
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.data_path", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--days", type=int, default=365, help="span of one region to push through (default 365)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="simulator latency per call (default 0)")
    args = parser.parse_args(argv)
    figures = measure_data_path(args.days, args.latency_ms / 1000)
    print(f"data path, region {REGION}, {args.days} day(s), simulator latency {args.latency_ms:g} ms")
    print(table(figures.rows()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
