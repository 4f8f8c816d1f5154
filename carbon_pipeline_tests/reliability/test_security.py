"""Security properties against real parts over loopback: TLS verification, line-protocol injection, secrets.

* TLS: both clients refuse a certificate from a CA they were not told to trust, before any credential
  leaves the machine, and only talk to such a server when verification is explicitly disabled (or the
  CA is given).
* Injection: hostile region names never get past the load, escaped tag and field values come back from
  a real InfluxDB exactly as sent, and values no escape can make safe stop the write before any line
  is sent.
* Secrets: the whole prod pipeline runs under ``dagster dev`` (successes and failures) with unique
  sentinel credentials, and the sentinels appear nowhere Dagster stores, shows or prints anything.
"""

from __future__ import annotations

import base64
import os
import selectors
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import dagster as dg
import httpx
import pandas as pd
import pytest
import trustme

from carbon_pipeline.definitions import JOB_NAME, build_definitions
from carbon_pipeline.deployments import production_resources
from carbon_pipeline.partitions import region_range_tags
from carbon_pipeline.settings import PipelineSettings
from carbon_pipeline.sinks.influxdb import InfluxDBResource, InfluxDBWriteError
from carbon_pipeline.sinks.line_protocol import LineProtocolError, carbon_intensity_lines
from carbon_pipeline.watttime.client import WattTimeClient
from carbon_pipeline.watttime.errors import WattTimeTLSError
from carbon_pipeline.watttime.resource import WattTimeResource
from carbon_pipeline.watttime.simulator import SIMULATOR_PASSWORD, SIMULATOR_USERNAME, SimulatorConfig, SimulatorServer
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.support.influxdb_shim import InfluxDBShim
from carbon_pipeline_tests.support.pipeline_harness import (
    REPO,
    influxdb_resource,
    materialize,
    watttime_resource,
)
from carbon_pipeline_tests.support.process_sampler import ProcessTreeSampler, process_tree
from carbon_pipeline_tests.support.processes import free_loopback_port
from carbon_pipeline_tests.support.secret_scan import Finding, SecretScanner, sentinel_secrets
from carbon_pipeline_tests.support.ui_answers import Repository, graphql, scan_answers, ui_answers

DAY = datetime(2025, 1, 1, tzinfo=UTC)
QUARTER = timedelta(minutes=15)
CERTIFICATE_FAILURE = "CERTIFICATE_VERIFY_FAILED"
FIRST_QUARTER = "WHERE time >= '2025-01-01T00:00:00Z' AND time < '2025-01-01T00:15:00Z'"
RELAY_TIMEOUT_SECONDS = 30.0
ACCEPT_POLL_SECONDS = 0.05

# ##### TLS: a real HTTPS endpoint in front of the loopback fakes


class TlsFront:
    """HTTPS on a free loopback port in front of a plain-HTTP loopback server, with a certificate from ``ca``.

    It terminates TLS and relays bytes, so the real simulator or InfluxDB shim answers behind it. A client
    that rejects the certificate aborts the handshake, so not one byte (credentials included) reaches
    the server behind.
    """

    def __init__(self, upstream_url: str, ca: trustme.CA) -> None:
        upstream = urlsplit(upstream_url)
        assert upstream.hostname is not None and upstream.port is not None
        self._upstream = (upstream.hostname, upstream.port)
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(self._context)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(ACCEPT_POLL_SECONDS)
        self._stop = threading.Event()
        self._connections: list[socket.socket] = []
        self._accepting = threading.Thread(target=self._accept_until_stopped, name="tls-front", daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> TlsFront:
        self._accepting.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stop.set()
        self._accepting.join()
        self._listener.close()
        for connection in self._connections:
            connection.close()

    def _accept_until_stopped(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            connection.settimeout(RELAY_TIMEOUT_SECONDS)
            self._connections.append(connection)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        try:
            secure = self._context.wrap_socket(connection, server_side=True)
        except (ssl.SSLError, OSError):
            return  # the client refused the certificate, as it should unless told otherwise
        with secure, socket.create_connection(self._upstream, timeout=RELAY_TIMEOUT_SECONDS) as plain:
            _relay(secure, plain)


def _relay(secure: ssl.SSLSocket, plain: socket.socket) -> None:
    """Copy bytes both ways until either side closes; decrypted bytes OpenSSL holds back count as readable."""
    peers: dict[socket.socket, socket.socket] = {secure: plain, plain: secure}
    with selectors.DefaultSelector() as selector:
        for sock in peers:
            selector.register(sock, selectors.EVENT_READ)
        while True:
            ready = [secure] if secure.pending() else [key.fileobj for key, _ in selector.select(RELAY_TIMEOUT_SECONDS)]
            if not ready:
                return
            for source in ready:
                assert isinstance(source, socket.socket)
                try:
                    data = source.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                peers[source].sendall(data)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A certificate authority no client trusts unless it is handed over."""
    return trustme.CA()


@pytest.fixture
def https_watttime(simulator: SimulatorServer, ca: trustme.CA) -> Iterator[str]:
    with TlsFront(simulator.base_url, ca) as front:
        yield front.url


@pytest.fixture
def https_influxdb(influxdb_shim: InfluxDBShim, ca: trustme.CA) -> Iterator[str]:
    with TlsFront(influxdb_shim.url, ca) as front:
        yield front.url


def _first_quarter(client: WattTimeClient) -> int:
    return sum(len(chunk.frame) for chunk in client.historical("CAISO_NORTH", DAY, DAY + QUARTER))


def _one_point_lines() -> list[str]:
    return [
        "carbon_intensity,region=CAISO_NORTH,grid_operator=CAISO,signal_type=co2_moer,source=watttime "
        "moer_lbs_per_mwh=1000.0 1735689600"
    ]


def _stored_count(server: InfluxDBServer, database: str, where: str = "") -> int:
    rows = server.query(f"SELECT count(moer_lbs_per_mwh) FROM carbon_intensity {where}", database)
    return rows[0]["count"] if rows else 0


def test_tls_verification_is_on_unless_explicitly_disabled() -> None:
    """Both resources, and the prod wiring, verify certificates unless someone turns it off on purpose."""
    assert WattTimeResource.model_fields["verify_tls"].default is True
    assert InfluxDBResource.model_fields["verify_ssl"].default is True
    prod = production_resources(
        PipelineSettings(
            deployment="prod",
            watttime_base_url="https://api.watttime.org",
            influxdb_host="https://influx.internal:8181",
            influxdb_database="carbon",
        )
    )
    watttime, sink = prod["watttime"], prod["point_sink"]
    assert isinstance(watttime, WattTimeResource) and watttime.verify_tls is True
    assert isinstance(sink, InfluxDBResource) and sink.verify_ssl is True
    assert watttime_resource("https://api.watttime.org").verify_tls is True


def test_watttime_refuses_an_untrusted_certificate_before_sending_the_password(
    https_watttime: str, simulator: SimulatorServer
) -> None:
    """Login sends the password, so an impostor certificate must end the connection before it."""
    resource = watttime_resource(https_watttime, max_attempts=5)
    with dg.build_resources({"watttime": resource}) as resources, pytest.raises(WattTimeTLSError) as raised:
        _first_quarter(resources.watttime.get_client())
    assert CERTIFICATE_FAILURE in str(raised.value) and "GET /login" in str(raised.value)
    assert not raised.value.retryable  # no retries: waiting cannot make a certificate trusted
    assert SIMULATOR_PASSWORD not in str(raised.value)
    assert simulator.state.stats()["logins"] == 0


def test_watttime_talks_to_that_server_only_when_verification_is_disabled(
    https_watttime: str, simulator: SimulatorServer
) -> None:
    """The knob exists for known test servers; disabling it is the only way past an untrusted certificate."""
    resource = watttime_resource(https_watttime, max_attempts=1, verify_tls=False)
    with dg.build_resources({"watttime": resource}) as resources:
        assert _first_quarter(resources.watttime.get_client()) == 3
    assert simulator.state.stats()["logins"] == 1


def test_watttime_client_trusts_a_private_ca_when_given_it(https_watttime: str, ca: trustme.CA) -> None:
    """A private CA is trusted by handing it over, which keeps verification on."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with WattTimeClient(
        SIMULATOR_USERNAME, SIMULATOR_PASSWORD, https_watttime, max_attempts=1, verify=context
    ) as client:
        assert _first_quarter(client) == 3


def test_influxdb_refuses_an_untrusted_certificate_before_sending_the_token(
    https_influxdb: str, influxdb_shim: InfluxDBShim, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    """Every write carries the token, so the handshake must fail first, with an error saying why."""
    sink = influxdb_resource(https_influxdb, influxdb_database, max_attempts=1)
    with pytest.raises(InfluxDBWriteError) as raised:
        sink.write_lines(_one_point_lines())
    sink.teardown_after_execution(None)
    assert CERTIFICATE_FAILURE in str(raised.value) and str(influxdb_shim.token) not in str(raised.value)
    assert influxdb_shim.requests == []
    assert _stored_count(influxdb_server, influxdb_database) == 0


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_influxdb_writes_to_that_server_only_when_verification_is_disabled(
    https_influxdb: str, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    """verify_ssl=False is the explicit way to reach a test server with a self-made certificate."""
    sink = influxdb_resource(https_influxdb, influxdb_database, max_attempts=1, verify_ssl=False)
    sink.write_lines(_one_point_lines())
    sink.teardown_after_execution(None)
    assert _stored_count(influxdb_server, influxdb_database) == 1


# ##### Line protocol: regions at load, hostile values through a real InfluxDB

HOSTILE_REGIONS = {
    "space": "CAISO_NORTH region=EVIL",
    "equals": "CAISO_NORTH=EVIL",
    "extra tag after a comma": "CAISO_NORTH,source=watttime",
    "newline with a smuggled point": "CAISO_NORTH\ncarbon_intensity,region=EVIL moer_lbs_per_mwh=0 0",
    "carriage return": "CAISO\rNORTH",
    "double quotes": 'CAISO_"NORTH"',
    "single quotes": "CAISO_'NORTH'",
    "backslash": "CAISO\\NORTH",
    "trailing backslash": "CAISO_NORTH\\",
    "terminal escape": "\x1b[2JCAISO_NORTH",
    "unicode line separator": "CAISO\u2028NORTH",
    "query string": "CAISO_NORTH&signal_type=health_damage",
    "path": "../CAISO_NORTH",
}
SMUGGLED = "carbon_intensity,region=EVIL"


@pytest.mark.parametrize("region", HOSTILE_REGIONS.values(), ids=HOSTILE_REGIONS.keys())
def test_hostile_regions_fail_the_load_without_echoing_control_characters(region: str) -> None:
    """Regions become URL parameters, tags and partition keys; the message lands in logs, so it stays one line."""
    with pytest.raises(ValueError) as raised:
        build_definitions(PipelineSettings.from_env({"DAGSTER_DEPLOYMENT": "local", "CARBON_REGIONS": region}))
    message = str(raised.value)
    assert message.startswith("CARBON_REGIONS: Invalid WattTime region"), message
    assert "expected upper-case letters, digits and underscores" in message
    assert message.isprintable(), f"raw control characters in {message!r}"


def test_hostile_region_output_of_the_dagster_loader_carries_no_smuggled_line(prod_env: dict[str, str]) -> None:
    """What an operator sees when the real loader refuses the value: no forged line in the console."""
    env = prod_env | {"CARBON_REGIONS": HOSTILE_REGIONS["newline with a smuggled point"]}
    command = [
        str(Path(sys.executable).parent / "dagster"),
        "definitions",
        "validate",
        "-m",
        "carbon_pipeline.definitions",
    ]
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=240, check=False)
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "CARBON_REGIONS: Invalid WattTime region" in output
    assert not [line for line in output.splitlines() if line.lstrip().startswith(SMUGGLED)]


HOSTILE_VALUES = {
    "backslash before comma": "a\\,b",
    "backslash before space": "a\\ b",
    "backslash before equals": "a\\=b",
    "leading backslash": "\\lead",
    "double backslash": "two\\\\slashes",
    "quotes in a tag": 'say "hi", ok',
    "tag smuggling": "x\\,evil\\=1",
    "field breakout": '" ,evil=1 ',
    "escaped quote breakout": '\\" ,evil=1 x="',
    "escaped comma after backslashes": "a\\\\,b=c d",
    "lone separators": " ,= ",
    "tab": "tab\there",
    "comment marker": "#not a comment",
    "non-ASCII": "Übertragung ⚡ grid",
}
SCHEMA_COLUMNS = {
    "time",
    "region",
    "grid_operator",
    "signal_type",
    "source",
    "moer_lbs_per_mwh",
    "carbon_intensity_gco2_kwh",
    "model_date",
}


def _frame(model_dates: list[str]) -> pd.DataFrame:
    """Points 5 minutes apart from 2025-01-01, one per model date, in MoerFrame's columns."""
    count = len(model_dates)
    return pd.DataFrame(
        {
            "region": ["CAISO_NORTH"] * count,
            "point_time": pd.date_range(DAY, periods=count, freq="5min").as_unit("ns"),
            "moer_lbs_per_mwh": [1000.0] * count,
            "carbon_intensity_gco2_kwh": [453.5924] * count,
            "units": ["lbs_co2_per_mwh"] * count,
            "model_date": model_dates,
            "imputed": pd.array([None] * count, dtype="boolean"),
        }
    )


@pytest.mark.parametrize("value", HOSTILE_VALUES.values(), ids=HOSTILE_VALUES.keys())
def test_escaped_tags_and_fields_round_trip_exactly_as_one_point(
    value: str, influxdb_shim: InfluxDBShim, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    """Escapes that InfluxDB reads differently from how they were meant would add tags, fields or points."""
    lines = carbon_intensity_lines(_frame([value]), signal_type=value, source=value)
    influxdb_resource(influxdb_shim.url, influxdb_database).write_lines(lines)

    (row,) = influxdb_server.query("SELECT * FROM carbon_intensity", influxdb_database)
    assert set(row) == SCHEMA_COLUMNS  # no smuggled tag or field
    assert (row["signal_type"], row["source"], row["model_date"]) == (value, value, value)
    assert (row["region"], row["time"], row["moer_lbs_per_mwh"]) == ("CAISO_NORTH", 1735689600, 1000.0)


def test_one_unsafe_value_refuses_the_whole_batch() -> None:
    """The serializer returns every line or none, so the sinks can never write the lines before a bad one."""
    with pytest.raises(LineProtocolError, match="line break"):
        carbon_intensity_lines(_frame(["2023-03-01", "2023-03-01", "2023-03-01\nx"]), signal_type="co2", source="w")


def _failure_chain(result: dg.ExecuteInProcessResult) -> str:
    """The step failure's message and those of its causes, as the run's event log records them."""
    (event,) = [event for event in result.all_events if event.is_step_failure]
    messages, error = [], event.step_failure_data.error
    while error is not None:
        messages.append(error.message)
        error = error.cause
    return "".join(messages)


@pytest.mark.parametrize("separator", ["\n", "\r"], ids=["newline", "carriage return"])
def test_watttime_value_with_a_line_break_fails_the_run_before_any_write(
    separator: str, influxdb_shim: InfluxDBShim, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    """WattTime's model date reaches a field unchecked; a line break in it must not become a second point."""
    model_date = f"2023-03-01{separator}{SMUGGLED} moer_lbs_per_mwh=0 0"
    with SimulatorServer(SimulatorConfig(publication_lag_seconds=0, model_date=model_date)) as hostile:
        resources = {
            "watttime": watttime_resource(hostile.base_url),
            "point_sink": influxdb_resource(influxdb_shim.url, influxdb_database),
        }
        result = materialize(resources, "CAISO_NORTH", DAY, DAY + 3 * QUARTER)
    message = _failure_chain(result)
    assert not result.success and "cannot be stored safely" in message and "contains a line break" in message
    assert "region CAISO_NORTH, interval" in message
    assert f"{separator}{SMUGGLED}" not in message
    assert influxdb_shim.requests == []
    assert influxdb_server.query("SHOW MEASUREMENTS", influxdb_database) == []


# ##### Secrets: the prod pipeline under `dagster dev`, then a scan of everything it left

LOCATION = "carbon_pipeline"
READY_TIMEOUT = 120
RUN_TIMEOUT = 240
TERMINAL_STATUSES = ("SUCCESS", "FAILURE", "CANCELED")
LAUNCH_RUN = """
mutation ($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
  }
}"""
RUN_STATUS = "query ($runId: ID!) { runOrError(runId: $runId) { ... on Run { status } } }"


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
    tags = region_range_tags("CAISO_NORTH", DAY, DAY)
    params = {
        "selector": {
            "repositoryLocationName": LOCATION,
            "repositoryName": "__repository__",
            "jobName": JOB_NAME,
            "assetSelection": [{"path": ["carbon_intensity"]}],
        },
        "runConfigData": {},
        "executionMetadata": {"tags": [{"key": key, "value": value} for key, value in tags.items()]},
    }
    launched = graphql(url, LAUNCH_RUN, {"params": params})["data"]["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id: str = launched["run"]["runId"]
    return run_id, _wait_for_run(url, run_id)


def _wait_for_run(url: str, run_id: str) -> str:
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        status: str = graphql(url, RUN_STATUS, {"runId": run_id})["data"]["runOrError"]["status"]
        if status in TERMINAL_STATUSES:
            return status
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} did not finish in {RUN_TIMEOUT} s")


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
    (folder / "seven.log").write_text(f"Bearer {token[:7]}... {password[9:16]} {secrets['INFLUXDB_TOKEN'][-7:]}\n")
    assert set(scanner.scan_tree(folder)) == {
        Finding(f"file {folder / 'plain.log'}", "INFLUXDB_TOKEN"),
        Finding(f"file {folder / 'events.db'}", "WATTTIME_PASSWORD"),
        Finding(f"file {folder / 'headers.txt'}", "WATTTIME_PASSWORD"),
        Finding(f"file {folder / 'token_prefix.log'}", token_name),
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
    assert _stored_count(influxdb_server, influxdb_database, FIRST_QUARTER) == 3  # the shim wants the sentinel token
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
