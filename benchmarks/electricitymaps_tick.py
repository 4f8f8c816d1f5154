"""One hourly tick's Electricity Maps requests for N zones, through the production client, against its limits.

Each zone's newest hour takes one call: `history(zone)` (the last 24 hours, the hour that just closed among
them) is as few calls as `latest(zone)` (only the hour still running). `ElectricityMapsClient` sends them to
the Electricity Maps simulator in its own process over loopback HTTP. The simulator refuses (429 with
Retry-After) what exceeds the client's rate, and records when each request arrived: the busiest second and
hour are counted there, where the API would count them.

    python -m benchmarks.electricitymaps_tick --zones 100
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from time import perf_counter

from benchmarks.data_path import banner_process, rate_limit_floor_seconds, simulator_stats, table
from benchmarks.tick import busiest_window
from carbon_pipeline.electricitymaps.client import ElectricityMapsClient
from carbon_pipeline.electricitymaps.endpoints import DEFAULT_REQUESTS_PER_SECOND, FREE_TIER_REQUESTS_PER_HOUR
from carbon_pipeline.electricitymaps.simulator import FREE_TOKEN, PAID_TOKEN
from carbon_pipeline.electricitymaps.simulator.values import synthetic_zones

SIMULATOR_BANNER = "Electricity Maps v3 simulator at "
FREE_ZONE = "DE"  # the simulator's free token covers this one zone, as a free plan covers one
HOUR_SECONDS = 3600.0


@dataclass(frozen=True)
class ElectricityMapsTickFigures:
    zones: int
    requests_per_second: float
    calls: int
    points: int
    wall_seconds: float
    peak_requests_per_second: int
    peak_requests_per_hour: int
    rate_limited: int

    @property
    def free_tier_seconds(self) -> float:
        """How long the same calls take with the client set to the free tier's 30 an hour."""
        return rate_limit_floor_seconds(self.calls, FREE_TIER_REQUESTS_PER_HOUR / HOUR_SECONDS)

    @property
    def fits_free_tier(self) -> bool:
        return self.peak_requests_per_hour <= FREE_TIER_REQUESTS_PER_HOUR

    def rows(self) -> list[tuple[str, str]]:
        return [
            ("zones / points read", f"{self.zones} / {self.points}"),
            ("Electricity Maps calls (retries included)", str(self.calls)),
            (f"wall time at {self.requests_per_second:g} request(s)/s (s)", f"{self.wall_seconds:.1f}"),
            ("requests in the busiest second", str(self.peak_requests_per_second)),
            (
                f"requests in the busiest hour (free tier: {FREE_TIER_REQUESTS_PER_HOUR})",
                str(self.peak_requests_per_hour),
            ),
            ("429 replies seen", str(self.rate_limited)),
            (f"the same calls at {FREE_TIER_REQUESTS_PER_HOUR} requests/h (h)", f"{self.free_tier_seconds / 3600:.2f}"),
        ]


def zone_names(count: int) -> list[str]:
    """The free token's one zone, or as many of the simulator's synthetic zones (a paid token's)."""
    return [FREE_ZONE] if count == 1 else sorted(synthetic_zones(count))


@contextmanager
def simulator_process(zones: int, requests_per_second: float) -> Iterator[str]:
    """`python -m carbon_pipeline.electricitymaps.simulator` on a free port, refusing more than the rate per
    token; yields its API URL (/v3 included).

    The rate is stated as a whole number of requests per window (20 a second, not 1 every 50 ms), as APIs
    state it: the client's 10 % headroom then leaves a tenth of the window for one request's hold-up.
    """
    limit = max(1, round(requests_per_second))
    command = [
        sys.executable,
        "-m",
        "carbon_pipeline.electricitymaps.simulator",
        "--port",
        "0",
        "--synthetic-zones",
        str(zones if zones > 1 else 0),
        "--rate-limit",
        str(limit),
        "--rate-window-seconds",
        str(limit / requests_per_second),
    ]
    with banner_process(command, SIMULATOR_BANNER) as api_url:
        yield api_url


def measure_electricitymaps_tick(
    zones: int, requests_per_second: float = DEFAULT_REQUESTS_PER_SECOND
) -> ElectricityMapsTickFigures:
    names = zone_names(zones)
    token = FREE_TOKEN if zones == 1 else PAID_TOKEN
    with (
        simulator_process(zones, requests_per_second) as api_url,
        ElectricityMapsClient(token, api_url, requests_per_second=requests_per_second) as client,
    ):
        started = perf_counter()
        points = sum(len(client.history(zone)) for zone in names)
        wall_seconds = perf_counter() - started
        stats = simulator_stats(api_url.removesuffix("/v3"))
    arrivals = stats["arrivals"]
    return ElectricityMapsTickFigures(
        zones=zones,
        requests_per_second=requests_per_second,
        calls=sum(stats["requests"].values()),
        points=points,
        wall_seconds=wall_seconds,
        peak_requests_per_second=busiest_window(arrivals, 1.0),
        peak_requests_per_hour=busiest_window(arrivals, HOUR_SECONDS),
        rate_limited=stats["statuses"].get("429", 0),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.electricitymaps_tick", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--zones", type=int, default=100, help="zones read in the tick (default 100)")
    parser.add_argument(
        "--requests-per-second",
        type=float,
        default=DEFAULT_REQUESTS_PER_SECOND,
        help=f"the client's rate, enforced by the simulator too (default {DEFAULT_REQUESTS_PER_SECOND:g})",
    )
    args = parser.parse_args(argv)
    figures = measure_electricitymaps_tick(args.zones, args.requests_per_second)
    print(f"Electricity Maps tick, {args.zones} zone(s), {args.requests_per_second:g} request(s)/s")
    print(table(figures.rows()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
