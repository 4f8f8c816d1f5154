"""The batching event-log storages record a single-run backfill exactly as Dagster's stock storages do.

A week of one region is materialized as one run (672 intervals) on a stock instance and on one
configured with our storage, both against the WattTime simulator; the per-partition records Dagster
keeps (planned and materialization events, materialized partitions, the asset's latest event, the
check's result) must be the same, on SQLite and on a real PostgreSQL server. The storages call
private methods of Dagster's stock storages; the tests at the end fail loudly when an upgrade
changes any of them.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import dagster_postgres
import pytest
import yaml
from dagster._core.instance.ref import InstanceRef
from dagster_postgres import PostgresEventLogStorage
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from carbon_pipeline.assets.carbon_intensity import VALID_DATA_CHECK
from carbon_pipeline.dagster_private import SqlEventLogStorage, SqliteEventLogStorage
from carbon_pipeline.sinks.files import LineProtocolFileSink
from carbon_pipeline.storage.batching import DEFAULT_EVENT_BATCH_SIZE, EVENT_BATCH_SIZE_VARIABLE
from carbon_pipeline.storage.sqlite import BatchingSqliteEventLogStorage, instance_event_log_directory
from carbon_pipeline.watttime.simulator import SimulatorServer
from carbon_pipeline_tests.support.pipeline_harness import (
    ASSET,
    PARTITIONS_START,
    REPO,
    materialize,
    watttime_resource,
)
from carbon_pipeline_tests.support.postgres_server import PostgresServer

REGION = "CAISO_NORTH"
WEEK = 7 * 96
SQLITE_STORAGE = {"module": "carbon_pipeline.storage.sqlite", "class": "BatchingSqliteEventLogStorage"}
POSTGRES_STORAGE = {"module": "carbon_pipeline.storage.postgres", "class": "BatchingPostgresEventLogStorage"}
# What the batching storages call on Dagster's stock storages, with the parameters they pass.
STOCK_METHODS_RELIED_ON = {
    SqlEventLogStorage: {
        "_store_asset_event_tags": ("self", "conn", "events", "event_ids"),
        "_store_asset_event": ("self", "conn", "event", "event_id"),
        "_event_to_row": ("self", "event"),
        "prepare_insert_event_batch": ("self", "events"),
        "index_transaction": ("self",),
        "store_event": ("self", "event"),
    },
    SqliteEventLogStorage: {
        "__init__": ("self", "base_dir", "inst_data"),
        "run_connection": ("self", "run_id"),
        "index_transaction": ("self",),
        "register_instance": ("self", "instance"),
    },
    PostgresEventLogStorage: {
        "__init__": ("self", "postgres_url", "should_autocreate_tables", "inst_data", "token_provider"),
        "_store_asset_event": ("self", "conn", "event", "event_id"),
        "_connect": ("self",),
        "index_transaction": ("self",),
    },
}


@dataclass(frozen=True)
class RecordedBackfill:
    planned: list[str]
    materialized: list[str]
    materialized_partitions: set[str]
    latest_partition: str | None
    check_passed: bool


@pytest.fixture
def batch_size_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading a batching storage sets the batch size for its process; undo that after each test.

    Instances run without DAGSTER_HOME, as under ``dagster dev`` in a fresh clone: our SQLite storage
    finds its files through the instance alone.
    """
    monkeypatch.delenv(EVENT_BATCH_SIZE_VARIABLE, raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


def instance_with(home: Path, config: Mapping[str, Any]) -> dg.DagsterInstance:
    """An instance in ``home`` configured by ``config``."""
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump({"telemetry": {"enabled": False}, **config}))
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))


def backfill_a_week(
    instance: dg.DagsterInstance, simulator: SimulatorServer, tmp_path: Path
) -> tuple[RecordedBackfill, int]:
    """What the instance recorded, and how many database transactions it took to record it."""
    resources = {
        "watttime": watttime_resource(simulator.base_url),
        "point_sink": LineProtocolFileSink(directory=str(tmp_path / "points")),
    }
    last = PARTITIONS_START + timedelta(minutes=15 * (WEEK - 1))
    commits = 0

    def count(_: Connection) -> None:
        nonlocal commits
        commits += 1

    event.listen(Engine, "commit", count)
    try:
        result = materialize(resources, REGION, PARTITIONS_START, last, instance=instance)
    finally:
        event.remove(Engine, "commit", count)
    assert result.success
    return recorded(instance, result.run_id), commits


def recorded(instance: dg.DagsterInstance, run_id: str) -> RecordedBackfill:
    def partitions(event_type: dg.DagsterEventType) -> list[str]:
        records = instance.get_records_for_run(run_id, of_type=event_type).records
        return [str(record.event_log_entry.dagster_event.partition) for record in records]  # type: ignore[union-attr]

    latest = instance.get_latest_materialization_event(ASSET.key)
    (check,) = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(ASSET.key, VALID_DATA_CHECK), limit=1
    )
    return RecordedBackfill(
        planned=partitions(dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED),
        materialized=partitions(dg.DagsterEventType.ASSET_MATERIALIZATION),
        materialized_partitions=set(instance.get_materialized_partitions(ASSET.key)),
        latest_partition=latest.dagster_event.partition if latest and latest.dagster_event else None,
        check_passed=check.status.value == "SUCCEEDED",
    )


@pytest.mark.slow
@pytest.mark.usefixtures("batch_size_restored")
def test_sqlite_batches_record_the_same_week_as_the_stock_storage(simulator: SimulatorServer, tmp_path: Path) -> None:
    stock, stock_commits = backfill_a_week(instance_with(tmp_path / "stock", {}), simulator, tmp_path)
    batched_instance = instance_with(tmp_path / "batched", {"event_log_storage": SQLITE_STORAGE})
    batched, batched_commits = backfill_a_week(batched_instance, simulator, tmp_path)

    assert batched == stock
    assert stock_commits > 4 * WEEK and batched_commits < 100
    assert len(batched.materialized) == len(set(batched.materialized)) == WEEK
    assert sorted(batched.planned) == sorted(batched.materialized)
    assert batched.materialized == sorted(batched.materialized)  # one region: in time order
    assert batched.latest_partition == batched.materialized[-1]
    assert batched.check_passed


@pytest.mark.usefixtures("batch_size_restored")
def test_sqlite_batches_keep_the_stock_file_layout_so_the_stock_storage_reads_them(
    simulator: SimulatorServer, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    batched_instance = instance_with(home, {"event_log_storage": SQLITE_STORAGE})
    batched, _ = backfill_a_week(batched_instance, simulator, tmp_path)

    (home / "dagster.yaml").write_text(yaml.safe_dump({"telemetry": {"enabled": False}}))
    stock_reader = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
    assert set(stock_reader.get_materialized_partitions(ASSET.key)) == batched.materialized_partitions
    assert (home / "history" / "runs" / "index.db").exists()


@pytest.mark.slow
@pytest.mark.usefixtures("batch_size_restored")
def test_postgres_batches_record_the_same_week_as_the_stock_storage(
    postgres: PostgresServer, simulator: SimulatorServer, tmp_path: Path
) -> None:
    postgres.create_database("stock")
    postgres.create_database("batched")
    stock, stock_commits = backfill_a_week(
        instance_with(tmp_path / "stock", {"storage": postgres.dagster_storage("stock")}), simulator, tmp_path
    )
    db = postgres.dagster_storage("batched")["postgres"]
    batched_config = {
        "run_storage": {"module": "dagster_postgres", "class": "PostgresRunStorage", "config": db},
        "schedule_storage": {"module": "dagster_postgres", "class": "PostgresScheduleStorage", "config": db},
        "event_log_storage": {**POSTGRES_STORAGE, "config": db},
    }
    batched, batched_commits = backfill_a_week(instance_with(tmp_path / "batched", batched_config), simulator, tmp_path)

    assert batched == stock
    assert stock_commits > WEEK and batched_commits < 50
    assert len(batched.materialized_partitions) == WEEK and batched.check_passed


@pytest.mark.usefixtures("batch_size_restored")
def test_loading_a_batching_storage_turns_dagster_event_batches_on(tmp_path: Path) -> None:
    instance = instance_with(tmp_path / "home", {"event_log_storage": SQLITE_STORAGE})
    assert isinstance(instance.event_log_storage, BatchingSqliteEventLogStorage)
    assert os.environ[EVENT_BATCH_SIZE_VARIABLE] == str(DEFAULT_EVENT_BATCH_SIZE)


@pytest.mark.usefixtures("batch_size_restored")
def test_an_operators_batch_size_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(EVENT_BATCH_SIZE_VARIABLE, "50")
    instance = instance_with(tmp_path / "home", {"event_log_storage": SQLITE_STORAGE})
    assert isinstance(instance.event_log_storage, BatchingSqliteEventLogStorage)
    assert os.environ[EVENT_BATCH_SIZE_VARIABLE] == "50"


@pytest.mark.usefixtures("batch_size_restored")
def test_without_base_dir_the_sqlite_storage_keeps_its_files_in_the_instance_home(tmp_path: Path) -> None:
    """As ``dagster dev`` without DAGSTER_HOME builds its instance: a temporary home, the config from the cwd."""
    project, home = tmp_path / "project", tmp_path / "home"
    project.mkdir()
    home.mkdir()
    (project / "dagster.yaml").write_text(
        yaml.safe_dump({"telemetry": {"enabled": False}, "event_log_storage": SQLITE_STORAGE})
    )
    instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home), config_dir=str(project)))
    assert isinstance(instance.event_log_storage, BatchingSqliteEventLogStorage)
    instance.report_runless_asset_event(dg.AssetMaterialization(ASSET.key, partition="CAISO_NORTH|2025-01-01-00:00"))

    stock_reader = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
    assert set(stock_reader.get_materialized_partitions(ASSET.key)) == {"CAISO_NORTH|2025-01-01-00:00"}
    assert (home / "history" / "runs" / "index.db").exists()
    assert list(project.iterdir()) == [project / "dagster.yaml"]


@pytest.mark.usefixtures("batch_size_restored")
def test_an_explicit_base_dir_wins_over_the_instance_home(tmp_path: Path) -> None:
    elsewhere = tmp_path / "event_logs"
    configured = {**SQLITE_STORAGE, "config": {"base_dir": str(elsewhere)}}
    instance = instance_with(tmp_path / "home", {"event_log_storage": configured})
    instance.report_runless_asset_event(dg.AssetMaterialization(ASSET.key, partition="CAISO_NORTH|2025-01-01-00:00"))
    assert (elsewhere / "index.db").exists()
    assert not (tmp_path / "home" / "history" / "runs").exists()


def test_the_default_event_log_directory_is_the_stock_instances() -> None:
    stock = InstanceRef.config_defaults("/instance/home")["event_log_storage"]
    assert stock is not None
    assert Path(yaml.safe_load(stock.config_yaml)["base_dir"]) == Path(instance_event_log_directory("/instance/home"))


@pytest.mark.parametrize(
    ("stock_class", "method", "parameters"),
    [
        (stock_class, method, parameters)
        for stock_class, methods in STOCK_METHODS_RELIED_ON.items()
        for method, parameters in methods.items()
    ],
)
def test_the_stock_storage_methods_we_call_keep_their_parameters(
    stock_class: type, method: str, parameters: tuple[str, ...]
) -> None:
    assert tuple(inspect.signature(getattr(stock_class, method)).parameters) == parameters, (
        f"{stock_class.__name__}.{method} changed; carbon_pipeline/storage relies on it"
    )


def test_the_installed_dagster_is_the_pinned_release() -> None:
    """The storages were checked against this release; an upgrade re-runs this file and updates the pins."""
    pins = dict(line.split("==") for line in (REPO / "constraints.txt").read_text().splitlines() if "==" in line)
    assert dg.__version__ == pins["dagster"]
    assert dagster_postgres.__version__ == pins["dagster-postgres"]
