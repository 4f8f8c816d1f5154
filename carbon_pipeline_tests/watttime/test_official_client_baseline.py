"""The official-client baseline downloads what the simulator serves and puts back the variables the SDK writes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from benchmarks.official_client import main, measure_official_client, official_client_history
from carbon_pipeline.watttime.simulator import SimulatorConfig, SimulatorServer, moer_value

REGION = "CAISO_NORTH"
DAY_START = datetime(2025, 1, 1, tzinfo=UTC)
DAY_END = DAY_START + timedelta(days=1)


@pytest.fixture
def baseline_simulator() -> Iterator[SimulatorServer]:
    """Configured as the data-path benchmark configures it: no latency, every point published at once."""
    config = SimulatorConfig(publication_lag_seconds=0, latency_seconds=0, data_rate_limit=1_000_000)
    with SimulatorServer(config) as server:
        yield server


def test_a_day_is_288_points_in_at_least_one_data_call(baseline_simulator: SimulatorServer) -> None:
    figures = measure_official_client(baseline_simulator.base_url, REGION, DAY_START, DAY_END)
    assert figures.points == 288
    assert figures.data_calls >= 1
    assert figures.data_calls == baseline_simulator.state.stats()["requests"]["/v3/historical"]
    assert figures.seconds > 0


def test_the_values_are_the_simulators(baseline_simulator: SimulatorServer) -> None:
    frame = official_client_history(baseline_simulator.base_url, REGION, DAY_START, DAY_END)
    expected_times = pd.date_range(DAY_START, DAY_END, freq="5min", inclusive="left")
    assert list(frame["point_time"]) == list(expected_times)
    assert list(frame["value"]) == [moer_value(REGION, moment.to_pydatetime()) for moment in expected_times]


def test_the_credential_variables_the_sdk_writes_are_put_back(
    baseline_simulator: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATTTIME_PASSWORD", "a-password-of-our-own")
    monkeypatch.delenv("WATTTIME_USER", raising=False)
    official_client_history(baseline_simulator.base_url, REGION, DAY_START, DAY_END)
    assert os.environ["WATTTIME_PASSWORD"] == "a-password-of-our-own"
    assert "WATTTIME_USER" not in os.environ


def test_the_benchmark_prints_its_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--days", "1"]) == 0
    printed = capsys.readouterr().out
    assert "official client, region CAISO_NORTH, 1 day(s), simulator latency 0 ms" in printed
    assert "points               288" in printed
