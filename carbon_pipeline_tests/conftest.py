"""Shared pytest fixtures for the carbon-pipeline test suite."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from carbon_pipeline_tests.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.influxdb_shim import InfluxDBShim

# ##### FIXTURES: InfluxDB


@pytest.fixture(scope="session")
def influxdb_server() -> Iterator[InfluxDBServer]:
    """One real influxd for the whole run: it starts in well under a second but
    per-test processes would still add up; tests isolate via `influxdb_database`."""
    with InfluxDBServer() as server:
        yield server


@pytest.fixture
def influxdb_database(influxdb_server: InfluxDBServer) -> Iterator[str]:
    """Name of a fresh, empty database that is dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    influxdb_server.create_database(name)
    yield name
    influxdb_server.drop_database(name)


@pytest.fixture
def influxdb_shim(influxdb_server: InfluxDBServer) -> Iterator[InfluxDBShim]:
    """InfluxDB 3 write API in front of the session server, demanding the token
    "test-token" (also `shim.token`), with its own port, request log and fault queue per test."""
    with InfluxDBShim(influxdb_server.url, token="test-token") as shim:
        yield shim
