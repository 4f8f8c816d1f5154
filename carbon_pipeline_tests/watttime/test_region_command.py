"""`carbon-pipeline region`: the installed console script against the WattTime simulator over loopback HTTP.

Against the simulator in the test process, and against the standalone one (`carbon-pipeline simulator`) a user
starts to try the command offline, with its account set by option or environment variable.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Mapping

import pytest

from carbon_pipeline.watttime.simulator import SIMULATOR_PASSWORD, SIMULATOR_USERNAME, SimulatorServer
from carbon_pipeline_tests.support.pipeline_harness import REPO
from carbon_pipeline_tests.support.standalone_simulator import CARBON_PIPELINE, standalone_simulator

pytestmark = pytest.mark.integration

COMMAND_TIMEOUT = 120
AMHERST = ("--latitude", "42.372", "--longitude", "-72.519")


def _env(**variables: str) -> dict[str, str]:
    """The caller's environment without any WATTTIME_ setting, so only what a test passes is seen."""
    inherited = {key: value for key, value in os.environ.items() if not key.startswith("WATTTIME_")}
    return inherited | variables


def _account(base_url: str, password: str = SIMULATOR_PASSWORD) -> dict[str, str]:
    return _env(WATTTIME_BASE_URL=base_url, WATTTIME_USERNAME=SIMULATOR_USERNAME, WATTTIME_PASSWORD=password)


def _region(*options: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """A new session has no controlling terminal, so a password prompt reads the (empty) stdin, not the tests'."""
    return subprocess.run(
        [CARBON_PIPELINE, "region", *options],
        env=dict(env),
        cwd=REPO,
        input="",
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
        start_new_session=True,
    )


def _assert_one_line_error(done: subprocess.CompletedProcess[str], exit_code: int, *phrases: str) -> None:
    assert done.returncode == exit_code, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[-1].startswith("carbon-pipeline region: error: "), done.stderr
    for phrase in phrases:
        assert phrase in lines[-1]


# ##### TESTS


def test_prints_the_region_code_and_its_full_name(simulator: SimulatorServer) -> None:
    done = _region(*AMHERST, env=_account(simulator.base_url))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ISONE_WCMA\tISONE Western/Central Massachusetts\n"
    assert simulator.state.stats()["logins"] == 1
    assert simulator.state.stats()["requests"]["/v3/region-from-loc"] == 1


def test_the_signal_type_base_url_and_username_are_options(simulator: SimulatorServer) -> None:
    env = _env(WATTTIME_USERNAME="somebody-else", WATTTIME_PASSWORD=SIMULATOR_PASSWORD)
    options = ["--signal-type", "co2_aoer", "--base-url", simulator.base_url, "--username", SIMULATOR_USERNAME]
    done = _region(*AMHERST, *options, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ISONE\tISO New England\n"


@pytest.mark.parametrize(
    ("options", "phrase"),
    [
        (("--latitude", "91", "--longitude", "0"), "latitude must be a number of degrees from -90 to 90"),
        (("--latitude", "0", "--longitude", "-180.5"), "longitude must be a number of degrees from -180 to 180"),
        (("--latitude", "nan", "--longitude", "0"), "latitude"),
    ],
)
def test_bad_coordinates_are_a_usage_error_before_any_request(
    simulator: SimulatorServer, options: tuple[str, ...], phrase: str
) -> None:
    done = _region(*options, env=_account(simulator.base_url))
    _assert_one_line_error(done, 2, phrase)
    assert simulator.state.stats()["logins"] == 0


def test_coordinates_that_are_no_numbers_are_refused_by_the_parser(simulator: SimulatorServer) -> None:
    done = _region("--latitude", "north", "--longitude", "0", env=_account(simulator.base_url))
    assert done.returncode == 2
    assert "--latitude: invalid float value: 'north'" in done.stderr


def test_rejected_credentials_are_an_error_that_never_shows_the_password(simulator: SimulatorServer) -> None:
    wrong = f"wrong-{uuid.uuid4()}"
    done = _region(*AMHERST, env=_account(simulator.base_url, password=wrong))
    _assert_one_line_error(done, 1, f"rejected the username/password for user '{SIMULATOR_USERNAME}'", "HTTP 403")
    assert wrong not in done.stdout + done.stderr


def test_no_account_is_a_usage_error(simulator: SimulatorServer) -> None:
    done = _region(*AMHERST, env=_env(WATTTIME_BASE_URL=simulator.base_url, WATTTIME_PASSWORD=SIMULATOR_PASSWORD))
    _assert_one_line_error(done, 2, "set WATTTIME_USERNAME or pass --username")


def test_no_password_is_a_usage_error(simulator: SimulatorServer) -> None:
    done = _region(*AMHERST, env=_env(WATTTIME_BASE_URL=simulator.base_url, WATTTIME_USERNAME=SIMULATOR_USERNAME))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "carbon-pipeline region: error: no password was given; nothing was sent to WattTime"
    )


def test_a_password_option_is_refused_without_echoing_it(simulator: SimulatorServer) -> None:
    secret = f"typed-{uuid.uuid4()}"
    done = _region(*AMHERST, f"--password={secret}", env=_account(simulator.base_url))
    assert done.returncode == 2
    assert "there is no --password option" in done.stderr
    assert secret not in done.stdout + done.stderr


def test_a_location_without_coverage_is_an_error(simulator: SimulatorServer) -> None:
    done = _region("--latitude", "0", "--longitude", "0", env=_account(simulator.base_url))
    _assert_one_line_error(done, 1, "no WattTime region covers this location", "latitude 0, longitude 0")


@pytest.mark.slow
def test_works_against_the_standalone_simulator_with_the_account_from_its_variables() -> None:
    password = f"Sim-{uuid.uuid4()}!"
    variables = {"WATTTIME_SIMULATOR_USERNAME": "home", "WATTTIME_SIMULATOR_PASSWORD": password}
    with standalone_simulator([], _env(**variables)) as (base_url, banner):
        account = _env(WATTTIME_BASE_URL=base_url, WATTTIME_USERNAME="home", WATTTIME_PASSWORD=password)
        done = _region("--latitude", "39.7522", "--longitude", "-105.0", env=account)
        refused = _region(*AMHERST, env=account | {"WATTTIME_USERNAME": SIMULATOR_USERNAME})
    assert done.returncode == 0, done.stderr
    assert done.stdout == "PSCO\tPublic Service Co of Colorado\n"
    assert refused.returncode == 1, "the built-in account is replaced, not added"
    assert "username: home" in "".join(banner) and password not in "".join(banner)


def test_the_standalone_simulators_account_can_be_given_as_options() -> None:
    password = f"Opt-{uuid.uuid4()}!"
    with standalone_simulator(["--username", "flat", "--password", password], _env()) as (base_url, banner):
        account = _env(WATTTIME_BASE_URL=base_url, WATTTIME_USERNAME="flat", WATTTIME_PASSWORD=password)
        done = _region(*AMHERST, env=account)
    assert done.stdout == "ISONE_WCMA\tISONE Western/Central Massachusetts\n", done.stderr
    assert password not in "".join(banner)
