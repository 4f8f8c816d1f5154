"""The WattTime client's frames and windows: bad values kept raw, dtypes and metadata, 30-day chunks with
inclusive bounds, input windows checked before any request, forecasts, my-access and meta warnings.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pandas as pd
import pytest

from carbon_pipeline.watttime.client import WattTimeClient
from carbon_pipeline.watttime.simulator import Fault, SimulatorServer
from carbon_pipeline_tests.support.scripted_watttime import scripted_server
from carbon_pipeline_tests.support.watttime_calls import (
    DAY_START,
    GOOD_BODY,
    HISTORICAL,
    HOUR,
    POINTS_PER_HOUR,
    one_hour,
    requests_to,
    signal_body,
)


@pytest.mark.parametrize(("kind", "bad_raw"), [("nulls", None), ("non_numeric", "n/a")])
def test_bad_values_become_nan_and_keep_the_raw_value(
    kind: str, bad_raw: object, sim: SimulatorServer, make_client: Callable[..., WattTimeClient]
) -> None:
    client = make_client()
    sim.state.inject(Fault(kind=kind, path=HISTORICAL))
    frame = one_hour(client)
    assert len(frame) == POINTS_PER_HOUR  # nothing dropped
    bad = frame[frame["value"].isna()]
    assert len(bad) >= 1
    assert bad["raw_value"].tolist() == [bad_raw] * len(bad)
    good = frame[frame["value"].notna()]
    assert good["value"].tolist() == good["raw_value"].tolist()


def test_empty_reply_is_an_empty_typed_frame(sim: SimulatorServer, make_client: Callable[..., WattTimeClient]) -> None:
    client = make_client()
    sim.state.inject(Fault(kind="empty", path=HISTORICAL))
    frame = one_hour(client)
    assert frame.empty
    assert frame.dtypes.astype(str).tolist() == ["datetime64[ns, UTC]", "float64", "object", "boolean"]


def test_points_outside_the_window_are_kept_for_validation(
    sim: SimulatorServer, make_client: Callable[..., WattTimeClient]
) -> None:
    client = make_client()
    sim.state.inject(Fault(kind="outside_window", path=HISTORICAL))
    (chunk,) = client.historical("CAISO_NORTH", *HOUR)
    assert len(chunk.frame) == POINTS_PER_HOUR + 1
    assert chunk.frame["point_time"].max() >= pd.Timestamp(chunk.end)


def test_frame_dtypes_and_metadata(sim: SimulatorServer, make_client: Callable[..., WattTimeClient]) -> None:
    client = make_client()
    (chunk,) = client.historical("CAISO_NORTH", DAY_START, DAY_START + timedelta(days=1))
    frame = chunk.frame
    assert frame.dtypes.astype(str).to_dict() == {
        "point_time": "datetime64[ns, UTC]",
        "value": "float64",
        "raw_value": "object",
        "imputed": "boolean",
    }
    assert len(frame) == 288 and not frame["imputed"].isna().any()
    assert frame["point_time"].iloc[0] == pd.Timestamp(DAY_START)
    assert (chunk.region, chunk.signal_type, chunk.start, chunk.end) == (
        "CAISO_NORTH",
        "co2_moer",
        DAY_START,
        DAY_START + timedelta(days=1),
    )
    assert (chunk.units, chunk.period_seconds, chunk.model_date, chunk.warnings) == (
        "lbs_co2_per_mwh",
        300,
        "2023-03-01",
        (),
    )
    assert chunk.request_id


def test_31_day_window_is_two_non_overlapping_calls(
    sim: SimulatorServer, make_client: Callable[..., WattTimeClient]
) -> None:
    client = make_client()
    start, end = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC)
    chunks = client.historical("CAISO_NORTH", start, end)
    queries = sim.state.stats()["historical_queries"]
    # The chunks are fetched concurrently: the server sees them in either order, the client returns them in order.
    assert sorted((query["start"], query["end"]) for query in queries) == [
        ("2024-01-01T00:00:00+00:00", "2024-01-30T23:59:59+00:00"),
        ("2024-01-31T00:00:00+00:00", "2024-01-31T23:59:59+00:00"),
    ]
    assert all(query["include_imputed_marker"] == "true" for query in queries)
    assert [(chunk.start, chunk.end) for chunk in chunks] == [
        (start, start + timedelta(days=30)),
        (start + timedelta(days=30), end),
    ]
    times = pd.concat([chunk.frame["point_time"] for chunk in chunks])
    assert len(times) == 31 * 288 and times.is_unique


def test_15_minute_interval_requests_inclusive_bounds(
    sim: SimulatorServer, make_client: Callable[..., WattTimeClient]
) -> None:
    client = make_client()
    (chunk,) = client.historical("CAISO_NORTH", DAY_START, DAY_START + timedelta(minutes=15))
    (query,) = sim.state.stats()["historical_queries"]
    assert (query["start"], query["end"]) == ("2024-03-01T00:00:00+00:00", "2024-03-01T00:14:59+00:00")
    assert [t.strftime("%H:%M") for t in chunk.frame["point_time"]] == ["00:00", "00:05", "00:10"]


def test_non_utc_aware_input_is_converted(sim: SimulatorServer, make_client: Callable[..., WattTimeClient]) -> None:
    client = make_client()
    plus_two = datetime(2024, 3, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))
    (chunk,) = client.historical("CAISO_NORTH", plus_two, plus_two + timedelta(minutes=15))
    assert chunk.start == datetime(2024, 3, 1, 0, 0, tzinfo=UTC) and chunk.start.tzinfo is UTC
    assert sim.state.stats()["historical_queries"][0]["start"] == "2024-03-01T00:00:00+00:00"


def test_a_year_is_thirteen_contiguous_chunks_of_every_point(make_client: Callable[..., WattTimeClient]) -> None:
    chunks = make_client().historical("CAISO_NORTH", datetime(2023, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC))
    assert len(chunks) == 13 and sum(len(chunk.frame) for chunk in chunks) == 105_120
    assert all(earlier.end == later.start for earlier, later in itertools.pairwise(chunks))


@pytest.mark.parametrize(
    ("start", "end", "problem"),
    [
        (datetime(2024, 3, 1), datetime(2024, 3, 2, tzinfo=UTC), "start must be timezone-aware"),  # noqa: DTZ001
        (DAY_START, datetime(2024, 3, 2), "end must be timezone-aware"),  # noqa: DTZ001
        (DAY_START, DAY_START, "must be after start"),
    ],
)
def test_bad_windows_are_rejected_before_any_request(
    start: datetime, end: datetime, problem: str, sim: SimulatorServer, make_client: Callable[..., WattTimeClient]
) -> None:
    client = make_client()
    with pytest.raises(ValueError, match=problem):
        client.historical("CAISO_NORTH", start, end)
    assert sim.state.stats()["logins"] == 0 and requests_to(sim, HISTORICAL) == 0


def test_invalid_region_is_rejected_before_any_request(
    sim: SimulatorServer, make_client: Callable[..., WattTimeClient]
) -> None:
    client = make_client()
    with pytest.raises(ValueError, match="'caiso_north'"):
        one_hour(client, "caiso_north")
    assert requests_to(sim, HISTORICAL) == 0


def test_forecast_reuses_the_parsing(sim: SimulatorServer, make_client: Callable[..., WattTimeClient]) -> None:
    client = make_client()
    chunk = client.forecast("CAISO_NORTH", horizon_hours=1)
    assert len(chunk.frame) == POINTS_PER_HOUR
    assert chunk.end - chunk.start == timedelta(hours=1)
    assert chunk.frame["imputed"].isna().all() and chunk.frame["imputed"].dtype == "boolean"
    assert chunk.units == "lbs_co2_per_mwh"
    with pytest.raises(ValueError, match="horizon_hours"):
        client.forecast("CAISO_NORTH", horizon_hours=73)


def test_my_access_lists_the_plan(
    start_simulator: Callable[..., SimulatorServer], make_client: Callable[..., WattTimeClient]
) -> None:
    free = start_simulator(plan_regions=frozenset({"CAISO_NORTH"}), index_within_plan=True)
    access = make_client(free.base_url).my_access()
    regions = {region["region"] for signal in access["signal_types"] for region in signal["regions"]}
    assert regions == {"CAISO_NORTH"}


def test_meta_warnings_are_kept_and_logged(
    make_client: Callable[..., WattTimeClient], caplog: pytest.LogCaptureFixture
) -> None:
    body = signal_body(GOOD_BODY["data"], warnings=[{"type": "MODEL_SWITCH", "message": "newer model from 2024-06"}])
    with scripted_server((200, {}, body)) as server:
        (chunk,) = make_client(server.base_url).historical("CAISO_NORTH", *HOUR)
    assert chunk.warnings == ("MODEL_SWITCH: newer model from 2024-06",)
    (record,) = [record for record in caplog.records if "MODEL_SWITCH" in record.getMessage()]
    assert record.levelno == logging.WARNING and "req-2" in record.getMessage()
