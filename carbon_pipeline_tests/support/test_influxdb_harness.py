"""Tests of the InfluxDB test harness itself: real influxd, the write shim, and the network guard.

Writes go through the real influxdb3-python client over loopback HTTP, so what
passes here is what the pipeline's own tests can rely on.
"""

from __future__ import annotations

import gc
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import urllib3
from influxdb_client_3 import InfluxDBClient3
from influxdb_client_3.exceptions import InfluxDBPartialWriteError
from influxdb_client_3.write_client.write_exceptions import ApiException
from pytest_socket import SocketConnectBlockedError

from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer, InfluxQLError, quote_identifier
from carbon_pipeline_tests.support.influxdb_shim import InfluxDBShim

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z, in epoch seconds

CARBON_LINES = [
    f'carbon_intensity,region=CAISO_NORTH,signal=co2_moer moer=812.25,quality=1i,source="watttime" {T0}',
    f'carbon_intensity,region=CAISO_NORTH,signal=co2_moer moer=790.5,quality=1i,source="watttime" {T0 + 300}',
    f'carbon_intensity,region=PJM_DC,signal=co2_moer moer=1001,quality=2i,source="watttime" {T0}',
]
CARBON_ROWS = [
    {"time": T0, "region": "CAISO_NORTH", "signal": "co2_moer", "moer": 812.25, "quality": 1, "source": "watttime"},
    {"time": T0, "region": "PJM_DC", "signal": "co2_moer", "moer": 1001, "quality": 2, "source": "watttime"},
    {
        "time": T0 + 300,
        "region": "CAISO_NORTH",
        "signal": "co2_moer",
        "moer": 790.5,
        "quality": 1,
        "source": "watttime",
    },
]
WRITE_PATHS = {False: "/api/v3/write_lp", True: "/api/v2/write"}
PRECISION_FACTORS = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}


def make_client(shim: InfluxDBShim, database: str, **options: Any) -> InfluxDBClient3:
    """Client in synchronous mode pointed at the shim, with the shim's token unless overridden."""
    options.setdefault("token", shim.token)
    options.setdefault("write_use_v2_api", False)
    return InfluxDBClient3(host=shim.url, database=database, **options)


def write_lines(shim: InfluxDBShim, database: str, lines: list[str], **options: Any) -> None:
    with make_client(shim, database, **options) as client:
        client.write(record=lines, write_precision="s")


def stored_rows(server: InfluxDBServer, database: str, measurement: str = "carbon_intensity") -> list[dict[str, Any]]:
    rows = server.query(f"SELECT * FROM {quote_identifier(measurement)}", database)
    return sorted(rows, key=lambda row: (row["time"], row.get("region", "")))


def raw_post(
    url: str, body: bytes, headers: dict[str, str] | None = None, method: str = "POST"
) -> urllib3.BaseHTTPResponse:
    """Send a request the client cannot produce (aliases, missing parameters, other paths)."""
    with urllib3.PoolManager(retries=False) as http:
        return http.request(method, url, body=body, headers={"Authorization": "Token test-token", **(headers or {})})


def influxd_pids(workdir: Path) -> set[int]:
    """Live processes whose command line names this server's directory (its config file is there)."""
    marker = str(workdir).encode()
    pids = set()
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "cmdline").read_bytes():
                pids.add(int(entry.name))
        except OSError:
            continue  # the process ended while we looked
    return pids


# ----- both write endpoints store what the client sends


@pytest.mark.parametrize("use_v2_api", [False, True], ids=["v3_write_lp", "v2_write"])
def test_write_endpoint_stores_points_with_exact_values(
    influxdb_shim: InfluxDBShim, influxdb_server: InfluxDBServer, influxdb_database: str, use_v2_api: bool
) -> None:
    write_lines(influxdb_shim, influxdb_database, CARBON_LINES, write_use_v2_api=use_v2_api)

    assert stored_rows(influxdb_server, influxdb_database) == CARBON_ROWS
    [request] = influxdb_shim.requests
    assert request.path == WRITE_PATHS[use_v2_api]
    assert request.params == {
        "org": "default",
        ("bucket" if use_v2_api else "db"): influxdb_database,
        "precision": "s" if use_v2_api else "second",
    }
    assert request.headers["authorization"] == "Token"
    assert request.line_count == 3
    assert request.body_size == len("\n".join(CARBON_LINES).encode())


@pytest.mark.parametrize("precision", PRECISION_FACTORS)
@pytest.mark.parametrize("use_v2_api", [False, True], ids=["v3_write_lp", "v2_write"])
def test_client_precisions_map_to_the_same_instant(
    influxdb_shim: InfluxDBShim,
    influxdb_server: InfluxDBServer,
    influxdb_database: str,
    use_v2_api: bool,
    precision: str,
) -> None:
    with make_client(influxdb_shim, influxdb_database, write_use_v2_api=use_v2_api) as client:
        client.write(record=f"m value=1 {T0 * PRECISION_FACTORS[precision]}", write_precision=precision)

    assert stored_rows(influxdb_server, influxdb_database, "m") == [{"time": T0, "value": 1}]


@pytest.mark.parametrize(
    ("path", "factor"),
    [
        pytest.param("/api/v3/write_lp?db={db}&precision=s", 1, id="v3_s"),
        pytest.param("/api/v3/write_lp?db={db}&precision=ms", 10**3, id="v3_ms"),
        pytest.param("/api/v3/write_lp?db={db}&precision=us", 10**6, id="v3_us"),
        pytest.param("/api/v3/write_lp?db={db}&precision=u", 10**6, id="v3_u"),
        pytest.param("/api/v3/write_lp?db={db}&precision=n", 10**9, id="v3_n"),
        pytest.param("/api/v3/write_lp?db={db}&precision=auto", 10**9, id="v3_auto_is_ns"),
        pytest.param("/api/v3/write_lp?db={db}&accept_partial=false&no_sync=true", 10**9, id="v3_default_is_ns"),
        pytest.param("/api/v2/write?bucket={db}&org=ignored", 10**9, id="v2_default_is_ns"),
        pytest.param("/api/v2/write?bucket={db}&precision=u", 10**6, id="v2_u"),
    ],
)
def test_precision_aliases_and_defaults(
    influxdb_shim: InfluxDBShim, influxdb_server: InfluxDBServer, influxdb_database: str, path: str, factor: int
) -> None:
    response = raw_post(influxdb_shim.url + path.format(db=influxdb_database), f"m value=1 {T0 * factor}".encode())

    assert response.status == 204, response.data
    assert stored_rows(influxdb_server, influxdb_database, "m") == [{"time": T0, "value": 1}]


def test_escaped_tag_values_round_trip_exactly(
    influxdb_shim: InfluxDBShim, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    line = (
        r"carbon_intensity,region=North\ Sea\,\ UK,source=a\=b\ c moer=1.5,"
        rf'note="he said \"hi\" \\ ok" {T0}'
    )
    write_lines(influxdb_shim, influxdb_database, [line])

    assert stored_rows(influxdb_server, influxdb_database) == [
        {"time": T0, "region": "North Sea, UK", "source": "a=b c", "moer": 1.5, "note": r'he said "hi" \ ok'}
    ]


def test_gzip_body_is_forwarded_compressed(
    influxdb_shim: InfluxDBShim, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    write_lines(influxdb_shim, influxdb_database, CARBON_LINES, enable_gzip=True)

    assert stored_rows(influxdb_server, influxdb_database) == CARBON_ROWS
    [request] = influxdb_shim.requests
    assert request.headers["content-encoding"] == "gzip"
    assert request.line_count == 3
    assert request.body_size != len("\n".join(CARBON_LINES).encode())


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "reply"),
    [
        ("POST", "/api/v3/query_sql?db={db}", b"m value=1", 404, b"404 page not found\n"),
        ("GET", "/api/v3/write_lp?db={db}", b"", 404, b"404 page not found\n"),
        ("POST", "/api/v3/write_lp?precision=s", b"m value=1", 400, b"""{"error": "missing query parameter 'db'"}"""),
        ("POST", "/api/v2/write?bucket={db}&precision=second", b"m value=1", 400, b"invalid precision 'second'"),
        ("POST", "/api/v3/write_lp?db={db}", b"\n", 400, b"incoming write was empty"),
        ("POST", "/api/v3/write_lp?db=no_such_db", b"m value=1", 404, b'database not found: \\"no_such_db\\"'),
    ],
    ids=["unknown_path", "wrong_method", "missing_db", "bad_precision", "empty_body", "upstream_error_passed_back"],
)
def test_requests_the_shim_refuses(
    influxdb_shim: InfluxDBShim,
    influxdb_server: InfluxDBServer,
    influxdb_database: str,
    method: str,
    path: str,
    body: bytes,
    status: int,
    reply: bytes,
) -> None:
    response = raw_post(influxdb_shim.url + path.format(db=influxdb_database), body, method=method)

    assert response.status == status
    assert reply in response.data
    assert influxdb_server.query("SHOW MEASUREMENTS", influxdb_database) == []


# ----- authentication


def test_wrong_or_missing_token_is_rejected_with_401(
    influxdb_shim: InfluxDBShim, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    with pytest.raises(ApiException) as wrong_token:
        write_lines(influxdb_shim, influxdb_database, CARBON_LINES, token="not-the-token")
    missing = raw_post(
        f"{influxdb_shim.url}/api/v3/write_lp?db={influxdb_database}", b"m value=1", {"Authorization": ""}
    )

    assert wrong_token.value.status == 401
    assert wrong_token.value.body == '{"error": "the request was not authenticated"}'
    assert missing.status == 401
    assert influxdb_server.query("SHOW MEASUREMENTS", influxdb_database) == []


def test_bearer_scheme_is_accepted_and_tokens_are_never_recorded(
    influxdb_shim: InfluxDBShim, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    write_lines(influxdb_shim, influxdb_database, CARBON_LINES, auth_scheme="Bearer")
    with pytest.raises(ApiException):
        write_lines(influxdb_shim, influxdb_database, CARBON_LINES, token="leaky-secret")

    assert stored_rows(influxdb_server, influxdb_database) == CARBON_ROWS
    assert [request.headers["authorization"] for request in influxdb_shim.requests] == ["Bearer", "Token"]
    assert "test-token" not in repr(influxdb_shim.requests)
    assert "leaky-secret" not in repr(influxdb_shim.requests)


# ----- fault injection


@pytest.mark.parametrize("status", [500, 503])
def test_status_fault_surfaces_as_api_exception_and_is_not_forwarded(
    influxdb_shim: InfluxDBShim, influxdb_server: InfluxDBServer, influxdb_database: str, status: int
) -> None:
    influxdb_shim.inject("status", count=2, status=status, retry_after=7)

    with make_client(influxdb_shim, influxdb_database) as client:
        failures = []
        for _ in range(2):
            with pytest.raises(ApiException) as failure:
                client.write(record=CARBON_LINES[:1], write_precision="s")
            failures.append(failure.value)
        assert influxdb_server.query("SHOW MEASUREMENTS", influxdb_database) == []
        client.write(record=CARBON_LINES, write_precision="s")

    assert [failure.status for failure in failures] == [status, status]
    assert [failure.retry_after for failure in failures] == ["7", "7"]
    assert stored_rows(influxdb_server, influxdb_database) == CARBON_ROWS
    assert len(influxdb_shim.requests) == 3


def test_delay_fault_slows_the_reply_then_forwards(
    influxdb_shim: InfluxDBShim, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    influxdb_shim.inject("delay", delay_seconds=0.3)

    started = time.monotonic()
    write_lines(influxdb_shim, influxdb_database, CARBON_LINES)

    assert time.monotonic() - started >= 0.3
    assert stored_rows(influxdb_server, influxdb_database) == CARBON_ROWS


def test_reset_fault_surfaces_as_urllib3_protocol_error(
    influxdb_shim: InfluxDBShim, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    influxdb_shim.inject("reset")

    with make_client(influxdb_shim, influxdb_database) as client:
        with pytest.raises(urllib3.exceptions.ProtocolError):
            client.write(record=CARBON_LINES, write_precision="s")
        assert influxdb_server.query("SHOW MEASUREMENTS", influxdb_database) == []
        client.write(record=CARBON_LINES, write_precision="s")

    assert stored_rows(influxdb_server, influxdb_database) == CARBON_ROWS


def test_partial_write_fault_stores_the_other_lines(
    influxdb_shim: InfluxDBShim, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    influxdb_shim.inject("partial_write")

    with pytest.raises(InfluxDBPartialWriteError) as failure:
        write_lines(influxdb_shim, influxdb_database, CARBON_LINES)

    assert failure.value.response.status == 400
    [line_error] = failure.value.line_errors
    assert (line_error.line_number, line_error.original_line) == (2, CARBON_LINES[1])
    assert stored_rows(influxdb_server, influxdb_database) == [CARBON_ROWS[0], CARBON_ROWS[1]]


def test_refused_connections_raise_new_connection_error_and_recover(
    influxdb_shim: InfluxDBShim, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    url = influxdb_shim.url
    with make_client(influxdb_shim, influxdb_database) as client:
        client.write(record=CARBON_LINES[:1], write_precision="s")  # leaves a pooled keep-alive connection
        influxdb_shim.refuse_connections()
        with pytest.raises(urllib3.exceptions.NewConnectionError):
            client.write(record=CARBON_LINES[1:], write_precision="s")
        influxdb_shim.accept_connections()
        client.write(record=CARBON_LINES[1:], write_precision="s")

    assert influxdb_shim.url == url
    assert stored_rows(influxdb_server, influxdb_database) == CARBON_ROWS


def test_reset_clears_recorded_requests_and_pending_faults(
    influxdb_shim: InfluxDBShim, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    write_lines(influxdb_shim, influxdb_database, CARBON_LINES[:1])
    influxdb_shim.inject("status", status=500)

    influxdb_shim.reset()
    write_lines(influxdb_shim, influxdb_database, CARBON_LINES[1:])

    assert [request.line_count for request in influxdb_shim.requests] == [2]
    assert stored_rows(influxdb_server, influxdb_database) == CARBON_ROWS


# ----- the influxd process


def test_restart_keeps_data_and_url(
    influxdb_shim: InfluxDBShim, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    url = influxdb_server.url
    write_lines(influxdb_shim, influxdb_database, CARBON_LINES)

    influxdb_server.restart()

    assert influxdb_server.url == url
    assert stored_rows(influxdb_server, influxdb_database) == CARBON_ROWS


def test_query_merges_group_by_tags_into_rows(
    influxdb_shim: InfluxDBShim, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    write_lines(influxdb_shim, influxdb_database, CARBON_LINES)

    rows = influxdb_server.query(
        "SELECT last(moer) FROM carbon_intensity GROUP BY region ORDER BY time", influxdb_database
    )

    assert sorted(rows, key=lambda row: row["region"]) == [
        {"region": "CAISO_NORTH", "time": T0 + 300, "last": 790.5},
        {"region": "PJM_DC", "time": T0, "last": 1001},
    ]


def test_query_errors_and_dropped_databases_raise(influxdb_server: InfluxDBServer, influxdb_database: str) -> None:
    with pytest.raises(InfluxQLError, match="error parsing query"):
        influxdb_server.query("SELEC * FROM carbon_intensity", influxdb_database)

    influxdb_server.drop_database(influxdb_database)

    with pytest.raises(InfluxQLError, match="database not found"):
        influxdb_server.query("SELECT * FROM carbon_intensity", influxdb_database)


def test_start_failure_reports_the_log_tail_and_leaves_no_process() -> None:
    server = InfluxDBServer()
    try:
        with (
            socket.create_server(("127.0.0.1", int(server.url.rsplit(":", 1)[1]))),
            pytest.raises(RuntimeError, match=r"(?s)influxd exited with code.*address already in use"),
        ):
            server.start()
        assert influxd_pids(server.log_path.parent) == set()
    finally:
        server.close()


def test_no_influxd_outlives_stop_or_garbage_collection() -> None:
    server = InfluxDBServer()
    workdir = server.log_path.parent
    server.start()
    assert len(influxd_pids(workdir)) == 1
    server.stop()
    assert influxd_pids(workdir) == set()
    server.start()

    del server
    gc.collect()

    assert influxd_pids(workdir) == set()
    assert not workdir.exists()


# ----- the network guard


def test_non_loopback_connections_are_blocked() -> None:
    # TEST-NET-1 (RFC 5737) is never routed; the guard must refuse before any packet leaves.
    with pytest.raises(SocketConnectBlockedError), pytest.warns(UserWarning, match="192.0.2.1"):
        socket.create_connection(("192.0.2.1", 80), timeout=1)
