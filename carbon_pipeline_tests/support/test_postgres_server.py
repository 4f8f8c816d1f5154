"""Tests of the PostgreSQL test harness: a real server, password authentication over TCP, and Dagster on it."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg2
import pytest
import yaml
from dagster._core.instance.ref import InstanceRef

from carbon_pipeline_tests.support.postgres_server import PostgresServer

PARTITION = "2024-03-02"


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


def query(server: PostgresServer, statement: str, database: str | None = None) -> list[tuple[Any, ...]]:
    connection = psycopg2.connect(
        host=server.host,
        port=server.port,
        user=server.user,
        password=server.password,
        dbname=database or server.database,
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement)
            return cursor.fetchall()
    finally:
        connection.close()


def write_dagster_home(home: Path, storage: dict[str, Any]) -> Path:
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump({"storage": storage, "telemetry": {"enabled": False}}))
    return home


def load_instance(home: Path) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))


@dg.asset(partitions_def=dg.DailyPartitionsDefinition(start_date="2024-03-01"))
def daily_reading() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"rows": 96})


def test_server_answers_a_query_over_tcp_with_its_password(postgres_server: PostgresServer) -> None:
    rows = query(postgres_server, "SELECT current_user, current_database(), host(inet_server_addr()), 6 * 7")
    assert rows == [(postgres_server.user, postgres_server.database, "127.0.0.1", 42)]


def test_url_connects_with_the_password_it_contains(postgres_server: PostgresServer) -> None:
    connection = psycopg2.connect(postgres_server.url())
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_database()")
            assert cursor.fetchall() == [(postgres_server.database,)]
    finally:
        connection.close()


def test_wrong_password_is_rejected(postgres_server: PostgresServer) -> None:
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(
            host=postgres_server.host,
            port=postgres_server.port,
            user=postgres_server.user,
            password="not-the-password",
            dbname=postgres_server.database,
        )


def test_repr_and_log_never_show_the_password(postgres_server: PostgresServer) -> None:
    assert postgres_server.password not in repr(postgres_server)
    assert postgres_server.password not in postgres_server.log_path.read_text(errors="replace")


def test_created_database_is_empty_and_reachable(postgres_server: PostgresServer) -> None:
    name = f"test_{uuid.uuid4().hex[:12]}"
    postgres_server.create_database(name)
    tables = "SELECT current_database(), count(*) FROM pg_tables WHERE schemaname = 'public'"
    assert query(postgres_server, tables, name) == [(name, 0)]


def test_fresh_dagster_instance_reads_back_a_partition_materialized_into_postgres(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    database = f"dagster_{uuid.uuid4().hex[:12]}"
    postgres_server.create_database(database)
    storage = postgres_server.dagster_storage(database)
    writer_home = write_dagster_home(tmp_path / "writer", storage)
    reader_home = write_dagster_home(tmp_path / "reader", storage)

    with load_instance(writer_home) as instance:
        result = dg.materialize([daily_reading], instance=instance, partition_key=PARTITION)
        assert result.success

    with load_instance(reader_home) as instance:
        event = instance.get_latest_materialization_event(daily_reading.key)
        assert event is not None
        assert event.asset_materialization is not None
        assert event.asset_materialization.partition == PARTITION
        assert instance.get_materialized_partitions(daily_reading.key) == {PARTITION}
        assert instance.get_run_by_id(result.run_id) is not None

    # The rows are in Postgres, not in SQLite files under either DAGSTER_HOME.
    assert query(postgres_server, "SELECT run_id FROM runs", database) == [(result.run_id,)]
    assert not list(tmp_path.rglob("*.db"))


def test_stop_closes_the_port_and_removes_the_temporary_directory() -> None:
    server = PostgresServer()
    server.start()
    workdir = server.workdir
    assert (workdir / "data" / "PG_VERSION").is_file()

    server.stop()

    assert not workdir.exists()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe, pytest.raises(ConnectionRefusedError):
        probe.connect((server.host, server.port))
