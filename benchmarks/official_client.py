"""Official-client baseline: WattTime's own Python SDK (PyPI ``watttime``) downloading a span of one region.

Our WattTime client is measured against this: the same span from the same simulator, fetched through the
SDK's ``WattTimeHistorical.get_historical_pandas`` with its defaults: 30-day chunks, one request at a time,
at most 10 requests per second. Only the base URL is changed, so every request goes to the simulator.

    python -m benchmarks.official_client --days 365 --latency-ms 200
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from time import perf_counter
from types import ModuleType
from typing import Any

import pandas as pd

from benchmarks.data_path import simulator_counts, table
from carbon_pipeline.watttime.simulator import SIMULATOR_PASSWORD, SIMULATOR_USERNAME, SimulatorConfig, SimulatorServer

REGION = "CAISO_NORTH"
CREDENTIAL_VARIABLES = ("WATTTIME_USER", "WATTTIME_PASSWORD")
INCLUSIVE_END_TRIM = timedelta(seconds=1)
"""The SDK's end bound is inclusive (as the API's is); asking up to one second before `end` keeps [start, end)."""


@dataclass(frozen=True)
class OfficialClientFigures:
    points: int
    data_calls: int
    seconds: float

    @property
    def points_per_second(self) -> float:
        return self.points / self.seconds

    def rows(self) -> list[tuple[str, str]]:
        return [
            ("points", f"{self.points:,}"),
            ("WattTime data calls", str(self.data_calls)),
            ("download (s)", f"{self.seconds:.2f}"),
            ("points/s", f"{self.points_per_second:,.0f}"),
        ]


def measure_official_client(base_url: str, region: str, start: datetime, end: datetime) -> OfficialClientFigures:
    """Download [start, end) of ``region`` with the official client from the simulator at ``base_url``.

    Data calls are the simulator's own count of /v3/ requests during the download, read from its stats endpoint.
    The time covers what a user of the SDK waits for: login, every chunk and the DataFrame it returns.
    """
    before, _ = simulator_counts(base_url)
    started = perf_counter()
    frame = official_client_history(base_url, region, start, end)
    seconds = perf_counter() - started
    after, _ = simulator_counts(base_url)
    return OfficialClientFigures(len(frame), after - before, seconds)


def official_client_history(base_url: str, region: str, start: datetime, end: datetime) -> pd.DataFrame:
    """The official client's DataFrame (``point_time``, ``value``) of co2_moer for [start, end)."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    if end <= start:
        raise ValueError(f"end ({end.isoformat()}) must be after start ({start.isoformat()})")
    with official_client("WattTimeHistorical", base_url) as client:
        frame: pd.DataFrame = client.get_historical_pandas(
            start, end - INCLUSIVE_END_TRIM, region, signal_type="co2_moer"
        )
    return frame


@contextmanager
def official_client(kind: str, base_url: str) -> Iterator[Any]:
    """An instance of the SDK's ``watttime.api.<kind>`` (``WattTimeForecast``...) that sends every request to
    ``base_url`` as the simulator's account; use it inside the block only.

    The constructor writes the credentials into WATTTIME_USER / WATTTIME_PASSWORD and every login reads them from
    there, so both variables are put back as they were only when the block ends. ``url_base`` is a class
    attribute read from WATTTIME_API_URL once, when watttime.api is imported, so an environment variable set
    around this call would come too late; setting it on the instance before the first request sends every
    request, login included, to ``base_url``.
    """
    api = _watttime_api()
    with _credential_variables_restored():
        client = getattr(api, kind)(username=SIMULATOR_USERNAME, password=SIMULATOR_PASSWORD)
        client.url_base = base_url
        yield client


def _watttime_api() -> ModuleType:
    """``watttime.api``, imported without the root-logger setup it does on import.

    Its first import calls ``logging.basicConfig(level=INFO)``, which would add a stderr handler to the root
    logger and lower its level for the whole process; the root logger's handlers and level are put back.
    """
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return importlib.import_module("watttime.api")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


@contextmanager
def _credential_variables_restored() -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in CREDENTIAL_VARIABLES}
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.official_client", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--days", type=int, default=365, help="span of one region to download (default 365)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="simulator latency per call (default 0)")
    args = parser.parse_args(argv)
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    config = SimulatorConfig(
        publication_lag_seconds=0, latency_seconds=args.latency_ms / 1000, data_rate_limit=1_000_000
    )
    with SimulatorServer(config) as simulator:
        figures = measure_official_client(simulator.base_url, REGION, end - timedelta(days=args.days), end)
    print(f"official client, region {REGION}, {args.days} day(s), simulator latency {args.latency_ms:g} ms")
    print(table(figures.rows()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
