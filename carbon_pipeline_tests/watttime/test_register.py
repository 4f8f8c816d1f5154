"""`carbon-pipeline register`: the installed console script against the WattTime simulator over loopback HTTP.

The password reaches the command the two ways a user gives it: WATTTIME_PASSWORD, or getpass. getpass is exercised
for real in a child process that has no controlling terminal (a new session), with stdin either a pseudo-terminal
(a person typing: asked twice, echo off) or a pipe (a script: asked once).
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from carbon_pipeline import cli
from carbon_pipeline.watttime.simulator import FREE_PLAN_REGIONS, Fault, SimulatorServer
from carbon_pipeline_tests.support.pipeline_harness import REPO

CARBON_PIPELINE = str(Path(sys.executable).parent / "carbon-pipeline")
COMMAND_TIMEOUT = 120
PROMPT_TIMEOUT = 60
PROMPT_END = b"password: "
PASSWORD = "Grid-clean-42!"
OTHER_PASSWORD = "Other-pass-77?"

# ##### HELPERS


@pytest.fixture
def issued_tokens(simulator: SimulatorServer, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every token the simulator issues, recorded by a pass-through wrapper so outputs can be searched for them."""
    tokens: list[str] = []
    issue = simulator.state.login

    def recording_login(username: str, password: str) -> str | None:
        token = issue(username, password)
        if token is not None:
            tokens.append(token)
        return token

    monkeypatch.setattr(simulator.state, "login", recording_login)
    return tokens


def _env(**variables: str) -> dict[str, str]:
    """The caller's environment without any WATTTIME_ setting, so only what a test passes is seen."""
    inherited = {key: value for key, value in os.environ.items() if not key.startswith("WATTTIME_")}
    return inherited | variables


def _options(username: str, base_url: str | None = None, *extra: str) -> list[str]:
    url = [] if base_url is None else ["--base-url", base_url]
    return [CARBON_PIPELINE, "register", "--username", username, "--email", f"{username}@example.org", *url, *extra]


def _run(args: list[str], env: Mapping[str, str], stdin_text: str = "") -> subprocess.CompletedProcess[str]:
    """A new session has no controlling terminal, so getpass cannot reach the terminal running the tests."""
    return subprocess.run(
        args,
        env=dict(env),
        cwd=REPO,
        input=stdin_text,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
        start_new_session=True,
    )


def _run_on_terminal(
    args: list[str], env: Mapping[str, str], answers: Sequence[str]
) -> subprocess.CompletedProcess[str]:
    """Type each answer into a pseudo-terminal once its prompt is shown.

    Waiting matters: getpass discards pending terminal input when it turns echo off, as a real terminal does.
    """
    controller, terminal = os.openpty()
    try:
        with subprocess.Popen(
            args,
            env=dict(env),
            cwd=REPO,
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        ) as process:
            assert process.stderr is not None
            try:
                shown = b""
                for number, answer in enumerate(answers, start=1):
                    shown = _read_until_prompts(process.stderr.fileno(), shown, number)
                    os.write(controller, answer.encode() + b"\n")
                stdout, stderr = process.communicate(timeout=COMMAND_TIMEOUT)
            except BaseException:
                process.kill()
                raise
    finally:
        os.close(controller)
        os.close(terminal)
    return subprocess.CompletedProcess(args, process.returncode, stdout.decode(), (shown + stderr).decode())


def _read_until_prompts(fd: int, shown: bytes, count: int) -> bytes:
    deadline = time.monotonic() + PROMPT_TIMEOUT
    while shown.count(PROMPT_END) < count:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise AssertionError(f"password prompt {count} not shown within {PROMPT_TIMEOUT} s; stderr: {shown!r}")
        chunk = os.read(fd, 4096)
        if not chunk:
            raise AssertionError(f"the command ended before password prompt {count}; stderr: {shown!r}")
        shown += chunk
    return shown


def _assert_no_secret(done: subprocess.CompletedProcess[str], *secrets: str) -> None:
    output = done.stdout + done.stderr
    for secret in secrets:
        assert secret not in output


def _assert_one_line_error(done: subprocess.CompletedProcess[str], exit_code: int, *phrases: str) -> None:
    assert done.returncode == exit_code, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("carbon-pipeline register: error: "), done.stderr
    for phrase in phrases:
        assert phrase in lines[0]


def _assert_free_account(simulator: SimulatorServer, username: str, password: str) -> None:
    assert simulator.state.plan_regions(username) == FREE_PLAN_REGIONS
    assert simulator.state.login(username, password) is not None


def _assert_success(done: subprocess.CompletedProcess[str], username: str) -> None:
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    assert f"'{username}'" in lines[0] and "free plan" in lines[0] and "CAISO_NORTH only" in lines[0]


def _register_requests(simulator: SimulatorServer) -> int:
    count: int = simulator.state.stats()["requests"]["/register"]
    return count


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# ##### TESTS: success


def test_password_from_the_environment_creates_a_free_account(
    simulator: SimulatorServer, issued_tokens: list[str]
) -> None:
    done = _run(_options("alice", simulator.base_url, "--org", "Home Lab"), _env(WATTTIME_PASSWORD=PASSWORD))
    _assert_success(done, "alice")
    assert done.stderr == ""
    assert simulator.state.stats()["logins"] == 1, "the command logs in exactly once to prove the account"
    _assert_no_secret(done, PASSWORD, *issued_tokens)
    _assert_free_account(simulator, "alice", PASSWORD)


def test_on_a_terminal_getpass_asks_twice_and_the_base_url_comes_from_the_environment(
    simulator: SimulatorServer, issued_tokens: list[str]
) -> None:
    done = _run_on_terminal(_options("bob"), _env(WATTTIME_BASE_URL=simulator.base_url), [PASSWORD, PASSWORD])
    _assert_success(done, "bob")
    assert done.stderr.count(PROMPT_END.decode()) == 2
    assert "may be echoed" not in done.stderr, "getpass turned echo off on the terminal"
    _assert_no_secret(done, PASSWORD, *issued_tokens)
    _assert_free_account(simulator, "bob", PASSWORD)


def test_a_piped_password_is_read_once_by_getpass(simulator: SimulatorServer, issued_tokens: list[str]) -> None:
    done = _run(_options("carol", simulator.base_url), _env(), stdin_text=f"{PASSWORD}\n")
    _assert_success(done, "carol")
    assert done.stderr.count(PROMPT_END.decode()) == 1
    assert "may be echoed" in done.stderr, "without a terminal getpass falls back to reading stdin"
    _assert_no_secret(done, PASSWORD, *issued_tokens)
    _assert_free_account(simulator, "carol", PASSWORD)


# ##### TESTS: refusals before any request


@pytest.mark.parametrize("password_arguments", [["--password", PASSWORD], [f"--password={PASSWORD}"]])
def test_argparse_rejects_a_password_option_without_echoing_it(
    password_arguments: list[str], simulator: SimulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["register", "--username", "dave", "--email", "dave@example.org", "--base-url", simulator.base_url]
    with pytest.raises(SystemExit) as refused:
        cli.main([*arguments, *password_arguments])
    assert refused.value.code == 2
    captured = capsys.readouterr()
    assert "there is no --password option" in captured.err
    assert PASSWORD not in captured.out + captured.err
    assert _register_requests(simulator) == 0


def test_the_help_offers_no_password_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as shown:
        cli.main(["register", "--help"])
    assert shown.value.code == 0
    help_text = capsys.readouterr().out
    assert "--username" in help_text and "--password" not in help_text


@pytest.mark.parametrize(
    ("variables", "stdin_text", "source"),
    [({"WATTTIME_PASSWORD": ""}, "", "WATTTIME_PASSWORD"), ({}, "\n", "the prompt")],
    ids=["environment", "getpass"],
)
def test_an_empty_password_is_refused(
    variables: dict[str, str], stdin_text: str, source: str, simulator: SimulatorServer
) -> None:
    done = _run(_options("erin", simulator.base_url), _env(**variables), stdin_text=stdin_text)
    assert done.returncode == 2, done.stderr
    assert f"carbon-pipeline register: error: the password from {source} is empty" in done.stderr
    assert "Traceback" not in done.stderr
    assert _register_requests(simulator) == 0


def test_on_a_terminal_mismatched_passwords_are_refused(simulator: SimulatorServer) -> None:
    done = _run_on_terminal(_options("frank", simulator.base_url), _env(), [PASSWORD, OTHER_PASSWORD])
    assert done.returncode == 2, done.stderr
    assert "the two passwords do not match" in done.stderr
    _assert_no_secret(done, PASSWORD, OTHER_PASSWORD)
    assert _register_requests(simulator) == 0


# ##### TESTS: WattTime's refusals and failures


def test_a_taken_username_is_a_clear_error_and_keeps_the_first_password(
    simulator: SimulatorServer, issued_tokens: list[str]
) -> None:
    first = _run(_options("grace", simulator.base_url), _env(WATTTIME_PASSWORD=PASSWORD))
    assert first.returncode == 0, first.stderr
    again = _run(_options("grace", simulator.base_url), _env(WATTTIME_PASSWORD=OTHER_PASSWORD))
    _assert_one_line_error(again, 1, "the username 'grace' is already taken", "x-request-id")
    _assert_no_secret(again, PASSWORD, OTHER_PASSWORD, *issued_tokens)
    assert simulator.state.login("grace", OTHER_PASSWORD) is None
    _assert_free_account(simulator, "grace", PASSWORD)


@pytest.mark.parametrize(
    ("password", "email", "phrase"),
    [
        ("lettersonly", "heidi@example.org", "password must contain a number"),
        (PASSWORD, "not-an-email", "body.email: value is not a valid email address"),
    ],
    ids=["weak-password", "bad-email"],
)
def test_a_bad_request_is_reported_in_one_line(
    password: str, email: str, phrase: str, simulator: SimulatorServer
) -> None:
    args = [CARBON_PIPELINE, "register", "--username", "heidi", "--email", email, "--base-url", simulator.base_url]
    done = _run(args, _env(WATTTIME_PASSWORD=password))
    _assert_one_line_error(done, 1, "POST /register: HTTP 422", phrase)
    _assert_no_secret(done, password)
    assert simulator.state.login("heidi", password) is None, "no account was created"


def test_an_unreachable_watttime_is_reported_in_one_line(closed_port: int) -> None:
    base_url = f"http://127.0.0.1:{closed_port}"
    done = _run(_options("ivan", base_url), _env(WATTTIME_PASSWORD=PASSWORD))
    _assert_one_line_error(done, 1, f"could not reach WattTime at {base_url}", "no account was created")
    _assert_no_secret(done, PASSWORD)


def test_a_busy_watttime_is_reported_without_retrying_the_post(simulator: SimulatorServer) -> None:
    simulator.state.inject(Fault(kind="status", status=503, path="/register"))
    done = _run(_options("judy", simulator.base_url), _env(WATTTIME_PASSWORD=PASSWORD))
    _assert_one_line_error(done, 1, "HTTP 503", "try again later")
    _assert_no_secret(done, PASSWORD)
    assert _register_requests(simulator) == 1
