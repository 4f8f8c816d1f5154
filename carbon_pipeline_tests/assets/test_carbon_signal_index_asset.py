"""The signal-index asset end to end: simulator over loopback HTTP -> pandera -> real InfluxDB.

The endpoint serves the current period only, so these runs use the real clock and the interval under way.
"""

from __future__ import annotations

import pytest

from carbon_pipeline.assets.carbon_signal_index import VALID_INDEX_CHECK
from carbon_pipeline.partitions import INTERVAL, format_window, region_partition_key
from carbon_pipeline.watttime.simulator import Fault, SimulatorServer, issued_forecast
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.support.pipeline_harness import (
    check_evaluation,
    failure_message,
    interval_under_way,
    materialize_index,
    metadata_by_partition,
)

INDEX = "/v3/signal-index"
BOTH = ("CAISO_NORTH", "PJM_DC")
CAISO = ("CAISO_NORTH", "CAISO_NORTH")


def _stored(server: InfluxDBServer, database: str) -> list[dict[str, object]]:
    return server.query("SELECT * FROM carbon_signal_index", database)


def _rank_in_forecast(region: str, moment: int) -> float:
    """The simulator's forecast issued at ``moment``, its first value ranked among the next 24 h, in percent."""
    forecast = issued_forecast(region, moment, 24)
    return round(100 * sum(value < forecast[0] for value in forecast[1:]) / (len(forecast) - 1), 1)


def test_the_interval_under_way_stores_the_simulators_index_in_its_own_measurement(
    resources: dict[str, object], influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    interval = interval_under_way()

    result = materialize_index(resources, BOTH, interval)

    assert result.success, failure_message(result)
    rows = {row["region"]: row for row in _stored(influxdb_server, influxdb_database)}
    assert set(rows) == set(BOTH)
    for region, row in rows.items():
        assert interval.timestamp() <= row["time"] < (interval + INTERVAL).timestamp()
        assert row["percentile"] == _rank_in_forecast(region, row["time"])
        assert (row["signal_type"], row["source"], row["model_date"]) == ("co2_moer_index", "watttime", "2023-03-01")
        metadata = metadata_by_partition(result)[str(region_partition_key(region, interval))]
        assert metadata["percentile"] == row["percentile"]
    assert influxdb_server.query("SELECT count(moer_lbs_per_mwh) FROM carbon_intensity", influxdb_database) == []
    assert check_evaluation(result, VALID_INDEX_CHECK).passed


def test_an_interval_that_is_over_fails_as_not_available_and_writes_nothing(
    resources: dict[str, object], simulator: SimulatorServer, influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    past = interval_under_way() - 4 * INTERVAL

    result = materialize_index(resources, CAISO, past)

    assert not result.success
    assert (
        f"region CAISO_NORTH, interval {format_window(past, past + INTERVAL)}: not available from this source: "
        "WattTime serves the signal index only for the current interval; nothing written"
    ) in failure_message(result)
    assert simulator.state.stats()["requests"][INDEX] == 0
    assert _stored(influxdb_server, influxdb_database) == []
    assert result.get_asset_materialization_events() == []


@pytest.mark.parametrize(
    ("kind", "named"),
    [
        ("out_of_range", "percentile -5.0 at"),
        ("nulls", "percentile None at"),
        ("duplicates", "fails exactly one point per reply"),
    ],
)
def test_a_bad_reply_is_refused_naming_value_region_and_interval_and_writes_nothing(
    resources: dict[str, object],
    simulator: SimulatorServer,
    influxdb_server: InfluxDBServer,
    influxdb_database: str,
    kind: str,
    named: str,
) -> None:
    interval = interval_under_way()
    simulator.state.inject(Fault(kind=kind, path=INDEX))

    result = materialize_index(resources, CAISO, interval)

    assert not result.success
    message = failure_message(result)
    assert f"region CAISO_NORTH, interval {format_window(interval, interval + INTERVAL)}" in message
    assert "WattTime data rejected, nothing written" in message and named in message
    assert not check_evaluation(result, VALID_INDEX_CHECK).passed
    assert _stored(influxdb_server, influxdb_database) == []
    assert result.get_asset_materialization_events() == []
