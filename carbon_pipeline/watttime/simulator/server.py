"""Runs the simulated WattTime API on a loopback port, embedded in a process or on its own."""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import threading

from carbon_pipeline.loopback_http import ServingThread
from carbon_pipeline.watttime.simulator.app import simulator_http_server
from carbon_pipeline.watttime.simulator.state import (
    FREE_PLAN_REGIONS,
    SIMULATOR_PASSWORD,
    SIMULATOR_USERNAME,
    SimulatorConfig,
    SimulatorState,
)


class SimulatorServer(ServingThread[SimulatorState]):
    """The simulator in a daemon thread; port 0 picks a free ephemeral port, read back from `base_url`."""

    def __init__(self, config: SimulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(SimulatorState(config), simulator_http_server, "watttime-simulator", host, port)


def _parser() -> argparse.ArgumentParser:
    # Imported here: the settings import Dagster, which an embedded simulator has no use for.
    from carbon_pipeline.settings import (
        SIMULATOR_PASSWORD_VARIABLE,
        SIMULATOR_USERNAME_VARIABLE,
        simulator_password_from_env,
        simulator_username_from_env,
    )

    parser = argparse.ArgumentParser(prog="python -m carbon_pipeline.watttime.simulator", description=__doc__)
    defaults = SimulatorConfig()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument(
        "--username",
        default=simulator_username_from_env() or SIMULATOR_USERNAME,
        help=f"the account that may log in (default: ${SIMULATOR_USERNAME_VARIABLE}, else {SIMULATOR_USERNAME})",
    )
    parser.add_argument(
        "--password",
        default=simulator_password_from_env(),
        help=f"its password; prefer ${SIMULATOR_PASSWORD_VARIABLE}, which other local users cannot read in the "
        "process list (default: that variable, else the built-in SIMULATOR_PASSWORD)",
    )
    parser.add_argument("--lag-seconds", type=float, default=defaults.publication_lag_seconds)
    parser.add_argument("--latency-seconds", type=float, default=defaults.latency_seconds)
    parser.add_argument("--token-ttl-seconds", type=float, default=defaults.token_ttl_seconds)
    parser.add_argument(
        "--data-rate-limit",
        type=int,
        default=defaults.data_rate_limit,
        help="data requests per user per 5 minutes before HTTP 429",
    )
    parser.add_argument(
        "--login-rate-limit", type=int, default=defaults.login_rate_limit, help="logins per user per 5 minutes"
    )
    parser.add_argument("--free-plan", action="store_true", help=f"limit the account to {sorted(FREE_PLAN_REGIONS)}")
    parser.add_argument(
        "--index-within-plan",
        action="store_true",
        help="serve /v3/signal-index only for the regions the plan covers (default: every region)",
    )
    parser.add_argument(
        "--synthetic-regions", type=int, default=0, help="serve N extra regions SYNTH_000... (load tests)"
    )
    parser.add_argument(
        "--revision-share",
        type=_share,
        default=defaults.revision_share,
        help="share of /v3/historical's points (0 to 1) that get a new value after publishing (default: none)",
    )
    parser.add_argument(
        "--revision-delay-seconds",
        type=_seconds,
        default=defaults.revision_delay_seconds,
        help=f"how long after publishing a point is revised (default: {defaults.revision_delay_seconds:g})",
    )
    return parser


def _share(raw: str) -> float:
    """A share from 0 to 1, or argparse's usage error naming the option."""
    value = _number(raw)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a share from 0 to 1")
    return value


def _seconds(raw: str) -> float:
    value = _number(raw)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number of seconds, 0 or more")
    return value


def _number(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{raw!r} is not a finite number")
    return value


def _banner(base_url: str, username: str, password_source: str) -> str:
    return "\n".join(
        [
            f"WattTime v3 simulator at {base_url}",
            f"username: {username}",
            f"password: {password_source}",
            "try:",
            f'  TOKEN=$(curl -s -u "{username}:$PASSWORD" {base_url}/login | python -c '
            "'import json,sys; print(json.load(sys.stdin)[\"token\"])')",
            f'  curl -s -H "Authorization: Bearer $TOKEN" "{base_url}/v3/forecast?region=CAISO_NORTH'
            '&signal_type=co2_moer&horizon_hours=1"',
            f'  curl -s -H "Authorization: Bearer $TOKEN" "{base_url}/v3/region-from-loc?latitude=42.372'
            '&longitude=-72.519&signal_type=co2_moer"',
            f'  curl -s -X POST {base_url}/_simulator/faults -d \'{{"kind": "status", "status": 503}}\'',
            f"  curl -s {base_url}/_simulator/stats",
            "Ctrl-C stops.",
        ]
    )


def _password(given: str | None) -> tuple[str, str]:
    """The account's password and, for the banner, where it came from: the banner never shows a given one."""
    if given is None:
        return SIMULATOR_PASSWORD, "the built-in SIMULATOR_PASSWORD in carbon_pipeline/watttime/simulator/state.py"
    return given, "the one given with --password or $WATTTIME_SIMULATOR_PASSWORD (not shown)"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    password, password_source = _password(args.password)
    config = SimulatorConfig(
        accounts={args.username: password},
        plan_regions=FREE_PLAN_REGIONS if args.free_plan else None,
        index_within_plan=args.index_within_plan,
        token_ttl_seconds=args.token_ttl_seconds,
        publication_lag_seconds=args.lag_seconds,
        latency_seconds=args.latency_seconds,
        data_rate_limit=args.data_rate_limit,
        synthetic_regions=args.synthetic_regions,
        login_rate_limit=args.login_rate_limit,
        revision_share=args.revision_share,
        revision_delay_seconds=args.revision_delay_seconds,
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with SimulatorServer(config, args.host, args.port) as server:
        print(_banner(server.base_url, args.username, password_source), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0
