"""``carbon-pipeline``: the demo (``carbon_pipeline.demo``), the standalone WattTime simulator, WattTime
account registration, the region of a location and the code server's health check."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
import warnings
from collections.abc import Sequence

from carbon_pipeline.dagster_private import (
    DagsterUserCodeUnreachableError,
    SerializableErrorInfo,
    code_location_load_error,
)
from carbon_pipeline.demo import DEMO_HOURS, demo
from carbon_pipeline.settings import (
    WATTTIME_BASE_URL_VARIABLE,
    WATTTIME_PASSWORD_VARIABLE,
    WATTTIME_USERNAME_VARIABLE,
    watttime_base_url_from_env,
    watttime_password_from_env,
    watttime_username_from_env,
)
from carbon_pipeline.watttime.client import WattTimeClient
from carbon_pipeline.watttime.endpoints import (
    DEFAULT_SIGNAL_TYPE,
    FREE_PLAN_REGION,
    SIGNAL_TYPES,
    WATTTIME_BASE_URL,
    require_coordinates,
    validate_base_url,
)
from carbon_pipeline.watttime.errors import WattTimeError
from carbon_pipeline.watttime.registration import register_account
from carbon_pipeline.watttime.simulator.server import main as simulator_main

# A password in argv is readable by every local user (ps, /proc) and kept in shell history, so it comes from here.
PASSWORD_VARIABLE = WATTTIME_PASSWORD_VARIABLE
EXIT_FAILED = 1
EXIT_USAGE = 2
# A person waits at the terminal: a shorter retry budget than a run's, which may wait out a long outage.
INTERACTIVE_MAX_ATTEMPTS = 3
INTERACTIVE_MAX_RETRY_SECONDS = 20.0


class _InputError(Exception):
    """What the user gave cannot be sent to WattTime; reported like a usage error, before any request."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="carbon-pipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help=f"materialize the last {DEMO_HOURS} hours on the local deployment")
    commands.add_parser(
        "simulator", help="serve the WattTime simulator (pass --help after it for options)", add_help=False
    )
    register_parser = _add_register_parser(commands)
    region_parser = _add_region_parser(commands)
    healthcheck_parser = _add_healthcheck_parser(commands)
    args, rest = parser.parse_known_args(argv)
    if args.command == "simulator":
        return simulator_main(rest)
    if args.command == "register":
        _refuse_extra_arguments(register_parser, rest)
        return register(args)
    if args.command == "region":
        _refuse_extra_arguments(region_parser, rest)
        return region(args)
    if args.command == "healthcheck":
        _refuse_extra_arguments(healthcheck_parser, rest)
        return healthcheck(args)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return demo()


# ##### register


def _add_register_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """No --password option on purpose: see PASSWORD_VARIABLE."""
    register_parser = commands.add_parser(
        "register",
        help="create a WattTime account (free plan) and check that it can log in",
        description=(
            f"Create a WattTime account with POST /register, then log in once with it. The password is read from "
            f"{PASSWORD_VARIABLE} when set, otherwise asked for without echo (twice on a terminal)."
        ),
    )
    register_parser.add_argument("--username", required=True, help="the account name to create")
    register_parser.add_argument("--email", required=True, help="where WattTime sends password-reset links")
    register_parser.add_argument("--org", help="organisation (optional)")
    _add_base_url_option(register_parser)
    return register_parser


def _add_base_url_option(parser: argparse.ArgumentParser) -> None:
    """Point a command at the simulator (`carbon-pipeline simulator`) as easily as at WattTime."""
    parser.add_argument(
        "--base-url",
        default=watttime_base_url_from_env(),
        help=f"WattTime API root (default: ${WATTTIME_BASE_URL_VARIABLE}, else {WATTTIME_BASE_URL})",
    )


def _refuse_extra_arguments(parser: argparse.ArgumentParser, rest: Sequence[str]) -> None:
    """argparse would echo stray arguments, and one of them may be a password typed where it does not belong."""
    if not rest:
        return
    options = sorted({argument.split("=", 1)[0] for argument in rest if argument.startswith("-")})
    if any("pass" in option.lower() for option in options):
        parser.error(f"there is no --password option: set {PASSWORD_VARIABLE} or type the password when asked")
    parser.error(f"unrecognized arguments (values not shown): {' '.join(options) or 'extra values'}")


def register(args: argparse.Namespace) -> int:
    """Create the account, then log in once with it, so that success means the credentials really work."""
    try:
        base_url = validate_base_url(args.base_url)
        password = _read_password(confirm=True)
        register_account(args.username, password, args.email, org=args.org, base_url=base_url)
    except (_InputError, ValueError) as problem:
        return _fail("register", str(problem), EXIT_USAGE)
    except WattTimeError as error:
        return _fail("register", str(error), EXIT_FAILED)
    try:
        _log_in_once(args.username, password, base_url)
    except WattTimeError as error:
        message = f"account {args.username!r} was created, but logging in with it failed: {error}"
        return _fail("register", message, EXIT_FAILED)
    print(
        f"Registered WattTime account {args.username!r} and logged in with it; it is on the free plan, "
        f"which may read {FREE_PLAN_REGION} only."
    )
    return 0


def _read_password(*, confirm: bool) -> str:
    """The environment serves scripts, a prompt serves people; an empty password is refused before any request.

    `confirm` asks a person twice, for a password being chosen, where nobody would notice a typo.
    """
    from_environment = watttime_password_from_env()
    password = _ask_password(confirm) if from_environment is None else from_environment
    if not password:
        source = PASSWORD_VARIABLE if from_environment is not None else "the prompt"
        raise _InputError(f"the password from {source} is empty; nothing was sent to WattTime")
    return password


def _ask_password(confirm: bool) -> str:
    """getpass keeps the password off the screen; with `confirm` a person types it twice."""
    interactive = confirm and _on_terminal()
    try:
        with warnings.catch_warnings():
            # Without a terminal getpass reads stdin and prints its own notice; the warning would only repeat it.
            warnings.simplefilter("ignore", getpass.GetPassWarning)
            password = getpass.getpass("WattTime password: ")
            if interactive and password and getpass.getpass("Repeat the password: ") != password:
                raise _InputError("the two passwords do not match; nothing was sent to WattTime")
    except (EOFError, KeyboardInterrupt):
        print(file=sys.stderr)  # ends the unanswered prompt's line, so the error starts a line of its own
        raise _InputError("no password was given; nothing was sent to WattTime") from None
    return password


def _on_terminal() -> bool:
    """getpass reads the controlling terminal when there is one, else stdin; either way a person may be typing."""
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    except OSError:
        return sys.stdin.isatty()
    return True


def _log_in_once(username: str, password: str, base_url: str) -> None:
    """WattTime answers "User created" before anything has used the account; one login proves it works."""
    with WattTimeClient(username, password, base_url, logger=_silent_logger()) as client:
        client.verify_credentials()


def _silent_logger() -> logging.Logger:
    """The command reports its outcome in one line; the client's own error log would print it a second time."""
    logger = logging.getLogger(f"{__name__}.commands")
    logger.propagate = False
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    return logger


def _fail(command: str, message: str, exit_code: int) -> int:
    """One line on stderr and no traceback: a taken username or an unreachable host is an answer, not a crash."""
    print(f"carbon-pipeline {command}: error: {' '.join(message.split())}", file=sys.stderr)
    return exit_code


# ##### region


def _add_region_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Credentials come from the environment, as the pipeline's own do; see PASSWORD_VARIABLE."""
    region_parser = commands.add_parser(
        "region",
        help="print the WattTime region serving a location (run it before setting CARBON_REGIONS)",
        description=(
            "Ask WattTime (GET /v3/region-from-loc) which region serves a location and print its code and full "
            f"name. Logs in as --username (default ${WATTTIME_USERNAME_VARIABLE}) with the password from "
            f"{PASSWORD_VARIABLE} when set, otherwise asked for without echo."
        ),
    )
    region_parser.add_argument("--latitude", type=float, required=True, help="degrees north, -90 to 90")
    region_parser.add_argument("--longitude", type=float, required=True, help="degrees east, -180 to 180")
    region_parser.add_argument(
        "--signal-type",
        choices=SIGNAL_TYPES,
        default=DEFAULT_SIGNAL_TYPE,
        help=f"regions depend on the signal (default: {DEFAULT_SIGNAL_TYPE}, the one the pipeline records)",
    )
    region_parser.add_argument(
        "--username",
        default=watttime_username_from_env(),
        help=f"WattTime account (default: ${WATTTIME_USERNAME_VARIABLE})",
    )
    _add_base_url_option(region_parser)
    return region_parser


def region(args: argparse.Namespace) -> int:
    """Print `<region code><TAB><full name>`: the code is what CARBON_REGIONS takes, the name says it is right."""
    try:
        base_url = validate_base_url(args.base_url)
        latitude, longitude = require_coordinates(args.latitude, args.longitude)
        if not args.username:
            raise _InputError(f"no WattTime account: set {WATTTIME_USERNAME_VARIABLE} or pass --username")
        password = _read_password(confirm=False)
    except (_InputError, ValueError) as problem:
        return _fail("region", str(problem), EXIT_USAGE)
    try:
        with WattTimeClient(
            args.username,
            password,
            base_url,
            signal_type=args.signal_type,
            logger=_silent_logger(),
            max_attempts=INTERACTIVE_MAX_ATTEMPTS,
            max_retry_seconds=INTERACTIVE_MAX_RETRY_SECONDS,
        ) as client:
            found = client.region_from_location(latitude, longitude)
    except WattTimeError as error:
        return _fail("region", str(error), EXIT_FAILED)
    print(f"{found.region}\t{found.full_name}")
    return 0


# ##### healthcheck


def _add_healthcheck_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """The image's HEALTHCHECK: `dagster api grpc-health-check` passes as soon as the server answers."""
    healthcheck_parser = commands.add_parser(
        "healthcheck",
        help="exit 0 only when the code server answers and its definitions loaded",
        description=(
            "Ask the code server for its repositories, as the webserver and the daemon do. A code server whose "
            "definitions failed to load (a missing production setting, say) keeps running and answers with the "
            "load error: this command then exits 1 and prints the error's first line."
        ),
    )
    healthcheck_parser.add_argument("-p", "--port", type=int, required=True, help="the code server's port")
    healthcheck_parser.add_argument("--host", default="localhost", help="the code server's host (default: localhost)")
    return healthcheck_parser


def healthcheck(args: argparse.Namespace) -> int:
    """Healthy means the definitions are served: an unconfigured code location is up, not healthy."""
    where = f"{args.host}:{args.port}"
    try:
        error = code_location_load_error(args.host, args.port)
    except DagsterUserCodeUnreachableError:
        return _fail("healthcheck", f"no code server answers at {where}", EXIT_FAILED)
    if error is not None:
        return _fail("healthcheck", f"the code server at {where} failed to load: {_root_cause(error)}", EXIT_FAILED)
    print(f"The code server at {where} serves its definitions.")
    return 0


def _root_cause(error: SerializableErrorInfo) -> str:
    """The first line of the innermost error: the project's own load errors name a setting, never its value."""
    while error.cause is not None:
        error = error.cause
    lines = error.message.strip().splitlines()
    return lines[0] if lines else error.cls_name or "unknown error"


if __name__ == "__main__":
    sys.exit(main())
