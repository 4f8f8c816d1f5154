"""`WattTimeClient.historical_updates`: `/v3/historical` with `updated_since`, each `last_updated` read and checked."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pandas as pd
import pytest

from carbon_pipeline.watttime.errors import WattTimeResponseError
from carbon_pipeline.watttime.simulator import SimulatorConfig, SimulatorServer, moer_value
from carbon_pipeline.watttime.simulator.signal import revised_value
from carbon_pipeline_tests.support.scripted_watttime import scripted_server
from carbon_pipeline_tests.support.simulator_session import ClientFactory

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
LAG = timedelta(seconds=120)
DELAY = timedelta(hours=6)
WEEK = (datetime(2025, 3, 2, tzinfo=UTC), datetime(2025, 3, 9, tzinfo=UTC))
SINCE = datetime(2025, 3, 5, tzinfo=UTC)
HISTORICAL = "/v3/historical"


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    config = SimulatorConfig(clock=lambda: NOW, revision_share=0.01, revision_delay_seconds=DELAY.total_seconds())
    with SimulatorServer(config) as server:
        yield server


def _frame(chunks: list[Any]) -> pd.DataFrame:
    return pd.concat([chunk.frame for chunk in chunks], ignore_index=True)


def test_updates_since_a_time_are_the_points_published_or_revised_since(
    sim: SimulatorServer, client_factory: ClientFactory
) -> None:
    client = client_factory(sim.base_url)
    frame = _frame(client.historical_updates("CAISO_NORTH", *WEEK, updated_since=SINCE))
    assert str(frame["last_updated"].dtype) == "datetime64[ns, UTC]"
    assert (frame["last_updated"] >= SINCE).all()
    revised = frame[frame["point_time"] < SINCE - LAG]  # published before SINCE: there only once revised
    assert not revised.empty
    for point in revised.itertuples():
        moment = point.point_time.to_pydatetime()
        assert point.value == revised_value("co2_moer", moer_value("CAISO_NORTH", moment))
        assert point.last_updated == point.point_time + LAG + DELAY
    fresh = frame[frame["point_time"] >= SINCE - LAG]
    assert len(fresh) == (WEEK[1] - (SINCE - LAG)) // timedelta(minutes=5)
    queries = sim.state.stats()["historical_queries"]
    assert [query["updated_since"] for query in queries] == ["2025-03-05T00:00:00+00:00"]


def test_updated_since_in_another_zone_is_sent_in_utc(sim: SimulatorServer, client_factory: ClientFactory) -> None:
    client = client_factory(sim.base_url)
    client.historical_updates("CAISO_NORTH", *WEEK, updated_since=SINCE.astimezone(timezone(timedelta(hours=-5))))
    (query,) = sim.state.stats()["historical_queries"]
    assert query["updated_since"] == "2025-03-05T00:00:00+00:00"


def test_a_naive_updated_since_is_refused_before_any_request(
    sim: SimulatorServer, client_factory: ClientFactory
) -> None:
    client = client_factory(sim.base_url)
    with pytest.raises(ValueError, match="updated_since must be timezone-aware"):
        client.historical_updates("CAISO_NORTH", *WEEK, updated_since=SINCE.replace(tzinfo=None))
    assert sim.state.stats()["requests"][HISTORICAL] == 0


def test_the_plain_fetch_asks_no_updated_since_and_reads_no_last_updated(
    sim: SimulatorServer, client_factory: ClientFactory
) -> None:
    client = client_factory(sim.base_url)
    chunks = client.historical("CAISO_NORTH", *WEEK)
    assert "last_updated" not in _frame(chunks).columns
    assert all("updated_since" not in query for query in sim.state.stats()["historical_queries"])
    assert sim.state.stats()["requests"][HISTORICAL] == 1


def _body(last_updated: object) -> dict[str, Any]:
    point: dict[str, Any] = {"point_time": "2025-03-05T00:00:00+00:00", "value": 812.3}
    if last_updated is not None:
        point["last_updated"] = last_updated
    meta = {"data_point_period_seconds": 300, "units": "lbs_co2_per_mwh"}
    return {"data": [point], "meta": meta}


@pytest.mark.parametrize(
    ("last_updated", "problem"),
    [
        (None, r"1 point\(s\) without a last_updated time, the first at 2025-03-05T00:00:00\+00:00"),
        (1741132800, "without a last_updated time"),
        ("2025-03-05T01:00:00", "last_updated '2025-03-05T01:00:00' has no timezone"),
        ("soon+00:00", "unparseable last_updated"),
        ("2025-03-04T23:00:00+00:00", "last updated at 2025-03-04T23:00:00\\+00:00, before updated_since"),
    ],
    ids=["absent", "a-number", "naive", "unparseable", "before-updated-since"],
)
def test_a_bad_last_updated_is_a_response_error(
    last_updated: object, problem: str, client_factory: ClientFactory
) -> None:
    with scripted_server((200, {}, _body(last_updated))) as server:
        client = client_factory(server.base_url)
        with pytest.raises(WattTimeResponseError, match=problem) as raised:
            client.historical_updates("CAISO_NORTH", SINCE, SINCE + timedelta(hours=1), updated_since=SINCE)
    assert "GET /v3/historical, region CAISO_NORTH" in str(raised.value)


def test_a_last_updated_with_z_or_an_offset_is_read_as_utc(client_factory: ClientFactory) -> None:
    replies = [(200, {}, _body("2025-03-05T00:02:00Z")), (200, {}, _body("2025-03-04T19:02:00-05:00"))]
    with scripted_server(*replies) as server:
        client = client_factory(server.base_url)
        frames = [
            _frame(client.historical_updates("CAISO_NORTH", SINCE, SINCE + timedelta(hours=1), updated_since=SINCE))
            for _ in replies
        ]
    for frame in frames:
        assert frame["last_updated"].tolist() == [pd.Timestamp("2025-03-05T00:02:00", tz="UTC")]
