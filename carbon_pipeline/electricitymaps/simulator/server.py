"""Runs the simulated Electricity Maps API on a loopback port, embedded in a process or on its own."""

from __future__ import annotations

import argparse
import contextlib
import logging
import threading

from carbon_pipeline.electricitymaps.simulator.app import simulator_http_server
from carbon_pipeline.electricitymaps.simulator.state import FREE_TOKEN, PAID_TOKEN, SimulatorConfig, SimulatorState
from carbon_pipeline.loopback_http import ServingThread


class ElectricityMapsSimulator(ServingThread[SimulatorState]):
    """The simulator in a daemon thread; port 0 picks a free ephemeral port, read back from `base_url`.

    `api_url` is what a client takes as its base URL (the server's root plus /v3).
    """

    def __init__(self, config: SimulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(SimulatorState(config), simulator_http_server, "electricitymaps-simulator", host, port)

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/v3"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m carbon_pipeline.electricitymaps.simulator", description=__doc__)
    defaults = SimulatorConfig()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766, help="0 picks a free port")
    parser.add_argument("--rate-limit", type=int, default=defaults.rate_limit, help="requests per token per window")
    parser.add_argument("--rate-window-seconds", type=float, default=defaults.rate_window_seconds)
    parser.add_argument("--synthetic-zones", type=int, default=0, help="serve N extra zones XX-SYN-000...")
    args = parser.parse_args(argv)
    config = SimulatorConfig(
        rate_limit=args.rate_limit, rate_window_seconds=args.rate_window_seconds, synthetic_zones=args.synthetic_zones
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with ElectricityMapsSimulator(config, args.host, args.port) as server:
        print(
            f"Electricity Maps v3 simulator at {server.api_url}\n"
            f"tokens (simulated, public): free {FREE_TOKEN} (zone {config.free_plan_zone}), paid {PAID_TOKEN}\n"
            f"try:\n  curl -s -H 'auth-token: {FREE_TOKEN}' '{server.api_url}/carbon-intensity/history?zone=DE'\n"
            f"  curl -s {server.base_url}/_simulator/stats\nCtrl-C stops.",
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0
