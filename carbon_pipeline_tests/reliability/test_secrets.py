"""Secrets: the whole prod pipeline runs under ``dagster dev`` (successes and failures) with unique sentinel
credentials, and the sentinels appear nowhere Dagster stores, shows or prints anything: DAGSTER_HOME,
console output, every answer of the UI's GraphQL API, and the command lines of every process it started.
"""

from __future__ import annotations

import base64
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from carbon_pipeline.definitions import JOB_NAME
from carbon_pipeline.partitions import region_range_tags
from carbon_pipeline.watttime.simulator import SIMULATOR_USERNAME, SimulatorServer
from carbon_pipeline_tests.support.dagster_dev import FINISHED_RUN, DagsterGraphQL
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.support.influxdb_shim import InfluxDBShim
from carbon_pipeline_tests.support.pipeline_harness import REPO, stored_count
from carbon_pipeline_tests.support.process_sampler import ProcessTreeSampler, process_tree
from carbon_pipeline_tests.support.processes import free_loopback_port
from carbon_pipeline_tests.support.secret_scan import Finding, SecretScanner, sentinel_secrets
from carbon_pipeline_tests.support.ui_answers import Repository, scan_answers, ui_answers

DAY = datetime(2025, 1, 1, tzinfo=UTC)
FIRST_QUARTER = "WHERE time >= '2025-01-01T00:00:00Z' AND time < '2025-01-01T00:15:00Z'"
LOCATION = "carbon_pipeline"
READY_TIMEOUT = 120
RUN_TIMEOUT = 240


@dataclass(frozen=True)
class DagsterDev:
    """A running ``dagster dev``: its process, GraphQL URL and the files its stdout and stderr go to."""

    process: subprocess.Popen[bytes]
    url: str
    stdout: Path
    stderr: Path


@dataclass(frozen=True)
class Outcome:
    """How one scenario's run ended, and a phrase its event log must hold to show it failed as intended."""

    run_id: str
    status: str
    expected_status: str
    evidence: str


@pytest.fixture
def sentinel_env(
    prod_env: dict[str, str],
    sentinels: dict[str, str],
    sentinel_watttime: SimulatorServer,
    sentinel_influxdb: InfluxDBShim,
) -> dict[str, str]:
    return (
        prod_env | sentinels | {"WATTTIME_BASE_URL": sentinel_watttime.base_url, "INFLUXDB_HOST": sentinel_influxdb.url}
    )


@contextmanager
def dagster_dev(env: dict[str, str], home: Path, logs: Path) -> Iterator[DagsterDev]:
    """``dagster dev`` (webserver, daemon, code server) as an operator starts it, stopped at the end."""
    port = free_loopback_port()
    command = [str(Path(sys.executable).parent / "dagster"), "dev", "-w", str(REPO / "workspace.yaml"), "-p", str(port)]
    stdout, stderr = logs / "dagster_dev.out", logs / "dagster_dev.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(command, cwd=home, env=env, stdout=out, stderr=err, start_new_session=True)
    dev = DagsterDev(process, f"http://127.0.0.1:{port}/graphql", stdout, stderr)
    try:
        _wait_until_ready(dev)
        yield dev
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        with suppress(ProcessLookupError):  # code servers outlive dagster dev until their heartbeat times out
            os.killpg(process.pid, signal.SIGKILL)


def _wait_until_ready(dev: DagsterDev) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        assert dev.process.poll() is None, f"dagster dev exited: {dev.stderr.read_text()[-3000:]}"
        try:
            if httpx.post(dev.url, json={"query": "{ version }"}, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError("dagster dev did not answer in time")


def _materialize_first_quarter(url: str) -> tuple[str, str]:
    """Launch the first interval as the UI's Materialize button does; wait for the run to end."""
    dagster = DagsterGraphQL(url)
    run_id = dagster.launch_run(JOB_NAME, region_range_tags("CAISO_NORTH", DAY, DAY))
    status = dagster.poll(lambda: dagster.run_status(run_id), lambda s: s in FINISHED_RUN, RUN_TIMEOUT, run_id)
    return run_id, status


def _simulator_faults(simulator: SimulatorServer, fault: dict[str, object] | None) -> None:
    """Queue (or, with None, clear) faults through the simulator's own HTTP control endpoint."""
    endpoint = f"{simulator.base_url}/_simulator/faults"
    response = httpx.delete(endpoint) if fault is None else httpx.post(endpoint, json=fault)
    response.raise_for_status()


def _run_every_outcome(url: str, simulator: SimulatorServer, shim: InfluxDBShim) -> dict[str, Outcome]:
    """A success, then each way a run can fail with a credential or its error text in play.

    Faults stay queued for the whole run and are cleared after it, so runs the sensors start meanwhile
    cannot use them up; they only add more runs to scan.
    """
    outcomes = {"success": _outcome(url, "SUCCESS", "points_written")}

    _simulator_faults(simulator, {"kind": "unauthorized", "path": "/login", "count": 1000})
    outcomes["watttime refuses the login"] = _outcome(url, "FAILURE", "rejected the username/password")
    _simulator_faults(simulator, None)

    _simulator_faults(simulator, {"kind": "out_of_range", "count": 1000})
    outcomes["watttime data rejected"] = _outcome(url, "FAILURE", "WattTime data rejected")
    _simulator_faults(simulator, None)

    shim.inject("status", status=503)  # one logged retry, then the token is refused
    shim.inject("status", count=1000, status=401, body='{"error": "the request was not authenticated"}')
    outcomes["influxdb refuses the token"] = _outcome(url, "FAILURE", "HTTP 401")
    shim.reset()

    shim.refuse_connections()
    outcomes["influxdb down"] = _outcome(url, "FAILURE", "Connection refused")
    shim.accept_connections()
    return outcomes


def _outcome(url: str, expected_status: str, evidence: str) -> Outcome:
    run_id, status = _materialize_first_quarter(url)
    return Outcome(run_id, status, expected_status, evidence)


def _scanner_finds_planted_sentinels(scanner: SecretScanner, secrets: dict[str, str], folder: Path) -> None:
    """The scan is only meaningful if it finds what it looks for, in each form and place it searches:
    whole secrets, 8 of their characters at the start or inside, raw or base64, but never 7."""
    token_name, token = next((name, value) for name, value in secrets.items() if name.startswith("WattTime token"))
    password = secrets["WATTTIME_PASSWORD"]
    folder.mkdir()
    (folder / "plain.log").write_text(f"token={secrets['INFLUXDB_TOKEN']}\n")
    with sqlite3.connect(folder / "events.db") as database:
        database.execute("CREATE TABLE event_logs (event TEXT)")
        database.execute("INSERT INTO event_logs VALUES (?)", (f'{{"password": "SENTINEL-{password}"}}',))
    database.close()
    basic = base64.b64encode(f"{SIMULATOR_USERNAME}:{password[5:13]}".encode()).decode()
    (folder / "headers.txt").write_text(f"Authorization: Basic {basic}\n")
    (folder / "token_prefix.log").write_text(f"Authorization: Bearer {token[:8]}...\n")
    (folder / "emaps_headers.txt").write_text(f"auth-token: {secrets['ELECTRICITYMAPS_API_TOKEN'][4:12]}\n")
    (folder / "seven.log").write_text(f"Bearer {token[:7]}... {password[9:16]} {secrets['INFLUXDB_TOKEN'][-7:]}\n")
    assert set(scanner.scan_tree(folder)) == {
        Finding(f"file {folder / 'plain.log'}", "INFLUXDB_TOKEN"),
        Finding(f"file {folder / 'events.db'}", "WATTTIME_PASSWORD"),
        Finding(f"file {folder / 'headers.txt'}", "WATTTIME_PASSWORD"),
        Finding(f"file {folder / 'token_prefix.log'}", token_name),
        Finding(f"file {folder / 'emaps_headers.txt'}", "ELECTRICITYMAPS_API_TOKEN"),
    }
    infix = secrets["INFLUXDB_TOKEN"][3:11]
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", infix]) as child:
        with ProcessTreeSampler(child.pid, scanner) as planted:
            planted.sample()
        child.kill()
    assert [finding.secret for finding in planted.findings()] == ["INFLUXDB_TOKEN"]


def _issued_tokens(simulator: SimulatorServer) -> dict[str, str]:
    """The WattTime tokens the simulator handed out during the test: bearer credentials for 30 minutes."""
    tokens = simulator.state.issued_tokens()
    return {f"WattTime token {number}": token for number, token in enumerate(tokens, start=1)}


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_secrets_appear_nowhere_dagster_stores_shows_or_prints(
    sentinel_env: dict[str, str],
    sentinels: dict[str, str],
    sentinel_watttime: SimulatorServer,
    sentinel_influxdb: InfluxDBShim,
    influxdb_server: InfluxDBServer,
    influxdb_database: str,
    dagster_home: Path,
    tmp_path: Path,
) -> None:
    """A success and four kinds of failure under `dagster dev`, then every place a secret could surface:
    the sentinels, and the WattTime tokens issued meanwhile, known only once the runs are over."""
    sampler = SecretScanner(sentinel_secrets(sentinels))
    with dagster_dev(sentinel_env, dagster_home, tmp_path) as dev, ProcessTreeSampler(dev.process.pid, sampler) as tree:
        started_before_the_runs = set(process_tree(dev.process.pid))
        outcomes = _run_every_outcome(dev.url, sentinel_watttime, sentinel_influxdb)
        answers = ui_answers(dev.url, Repository(LOCATION), JOB_NAME)
    tokens = _issued_tokens(sentinel_watttime)
    secrets = sentinel_secrets(sentinels) | tokens
    scanner = SecretScanner(secrets)

    assert _everything_dagster_left(scanner, dagster_home, dev, answers, tree) == []

    # Not vacuous: the runs used the secrets and ended as planned, the scanned answers hold their stories,
    # the secrets reached processes the sampler saw, and the scanner finds planted copies.
    assert {name: outcome.status for name, outcome in outcomes.items()} == {
        name: outcome.expected_status for name, outcome in outcomes.items()
    }
    assert stored_count(influxdb_server, influxdb_database, FIRST_QUARTER) == 3  # the shim wants the sentinel token
    assert sentinel_watttime.state.stats()["logins"] >= 1  # the simulator only logs in the sentinel password
    assert len(tokens) >= 1, "the tokens of those logins are scanned for too"  # a count: no value shown
    for name, outcome in outcomes.items():
        assert outcome.evidence in answers[f"events of run {outcome.run_id}"], name
    assert all(sentinel_env[name] == value for name, value in sentinels.items())
    _assert_run_processes_held_the_secrets(tree, started_before_the_runs, set(sentinels))
    _scanner_finds_planted_sentinels(scanner, secrets, tmp_path / "planted")


def _everything_dagster_left(
    scanner: SecretScanner, home: Path, dev: DagsterDev, answers: dict[str, str], tree: ProcessTreeSampler
) -> list[Finding]:
    """DAGSTER_HOME (event logs, run storage, compute logs), console output, UI answers, command lines."""
    return [
        *scanner.scan_tree(home),
        *scanner.scan_bytes("dagster dev stdout", dev.stdout.read_bytes()),
        *scanner.scan_bytes("dagster dev stderr", dev.stderr.read_bytes()),
        *scan_answers(scanner, answers),
        *tree.findings(scanner),
    ]


def _assert_run_processes_held_the_secrets(tree: ProcessTreeSampler, before: set[int], secrets: set[str]) -> None:
    """Processes started for the runs had the secrets in their environment: the sampler saw the ones using them."""
    seen = tree.secrets_in_environments
    assert [pid for pid, names in seen.items() if pid not in before and names == secrets], tree.commands()
