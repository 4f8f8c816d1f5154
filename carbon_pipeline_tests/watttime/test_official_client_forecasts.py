"""WattTime's own Python SDK (PyPI ``watttime``) against the simulator, for every endpoint the pipeline uses.

If the simulator answered in shapes the real API does not, the SDK, written against the real API, would choke
here: these tests keep the simulator honest. Only the SDK's base URL is changed (``official_client``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from benchmarks.official_client import official_client
from carbon_pipeline.watttime.simulator import SimulatorConfig, SimulatorServer

NOW = datetime(2025, 1, 10, 12, 2, tzinfo=UTC)
ISSUED = datetime(2025, 1, 10, 12, 0, tzinfo=UTC)
DAY_ONE = datetime(2025, 1, 5, tzinfo=UTC)


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    """A simulator whose clock stands still, so the issue times the SDK sees are known."""
    with SimulatorServer(SimulatorConfig(clock=lambda: NOW, publication_lag_seconds=0)) as server:
        yield server


def test_the_sdk_reads_the_latest_forecast(simulator: SimulatorServer) -> None:
    with official_client("WattTimeForecast", simulator.base_url) as sdk:
        reply = sdk.get_forecast_json("CAISO_NORTH", signal_type="co2_moer", horizon_hours=24)
        frame = sdk.get_forecast_pandas("CAISO_NORTH", horizon_hours=72)
        pinned = sdk.get_forecast_json("CAISO_NORTH", model="2022-10-01", horizon_hours=1)
    assert reply["meta"]["generated_at"] == ISSUED.isoformat()
    assert reply["meta"]["model"]["date"] == "2023-03-01"
    assert len(reply["data"]) == 288 and reply["data"][0]["point_time"] == ISSUED.isoformat()
    assert list(frame.columns) == ["point_time", "value"] and len(frame) == 864
    assert pinned["meta"]["model"]["date"] == "2022-10-01" and len(pinned["data"]) == 12
    assert [point["value"] for point in pinned["data"]] != [point["value"] for point in reply["data"][:12]]


def test_the_sdk_reads_two_days_of_historical_forecasts_in_its_daily_chunks(simulator: SimulatorServer) -> None:
    with official_client("WattTimeForecast", simulator.base_url) as sdk:
        replies = sdk.get_historical_forecast_json(DAY_ONE, DAY_ONE + timedelta(days=2), "CAISO_NORTH")
        frame = sdk.get_historical_forecast_pandas(DAY_ONE, DAY_ONE + timedelta(hours=1), "CAISO_NORTH")
    # The SDK ends every chunk but the last five minutes early; the last ends on its inclusive bound.
    assert [len(reply["data"]) for reply in replies] == [288, 289]
    assert all(len(item["forecast"]) == 288 for reply in replies for item in reply["data"])
    issued = [datetime.fromisoformat(item["generated_at"]) for reply in replies for item in reply["data"]]
    assert issued == [DAY_ONE + timedelta(minutes=5 * n) for n in range(577)]
    assert set(frame.columns) == {"point_time", "value", "generated_at"}
    assert len(frame) == 13 * 288
    assert frame["generated_at"].nunique() == 13 and frame["point_time"].dt.tz is not None


def test_the_sdk_reads_the_forecasts_of_listed_days(simulator: SimulatorServer) -> None:
    with official_client("WattTimeForecast", simulator.base_url) as sdk:
        frame = sdk.get_historical_forecast_pandas_list([date(2025, 1, 6)], "PSCO", horizon_hours=1)
    assert frame["generated_at"].min() == pd.Timestamp("2025-01-06T00:00:00Z")
    assert frame["generated_at"].max() == pd.Timestamp("2025-01-06T23:55:00Z")
    assert len(frame) == 288 * 12


def test_the_sdk_finds_the_region_of_a_location(simulator: SimulatorServer) -> None:
    with official_client("WattTimeBase", simulator.base_url) as sdk:
        moer = sdk.region_from_loc(42.372, -72.519, signal_type="co2_moer")
        aoer = sdk.region_from_loc(39.7522, -105.0, signal_type="co2_aoer")
    assert moer == {
        "region": "ISONE_WCMA",
        "region_full_name": "ISONE Western/Central Massachusetts",
        "signal_type": "co2_moer",
    }
    assert aoer["region"] == "PSCO"


def test_the_sdk_reads_my_access_with_every_model_typed(simulator: SimulatorServer) -> None:
    with official_client("WattTimeMyAccess", simulator.base_url) as sdk:
        access = sdk.get_access_pandas()
    assert set(access["signal_type"]) == {"co2_moer", "co2_aoer", "health_damage"}
    assert set(access["endpoint"]) == {"v3/forecast", "v3/historical", "v3/signal-index"}
    assert access["type"].notna().all()
    models = access.groupby(["signal_type", "region", "endpoint"])["model"].apply(sorted)
    assert all(found == ["2022-10-01", "2023-03-01"] for found in models)
    assert access["data_start"].max() < pd.Timestamp("2025-01-01")
    assert "CAISO" in set(access.loc[access["signal_type"] == "co2_aoer", "region"])
    assert "CAISO" not in set(access.loc[access["signal_type"] == "co2_moer", "region"])
