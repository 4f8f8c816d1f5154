"""The WattTime v3 client and its Dagster resource, against real HTTP servers on loopback.

Most tests drive the WattTime simulator and read its request statistics. A few reply shapes the simulator
cannot produce (HTTP-date Retry-After, missing meta, a known token) come from a small scripted server.
"""

from __future__ import annotations

import bisect
import email.utils
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from carbon_pipeline.regions import GRID_OPERATORS, grid_operator_for, parse_regions, validate_region
from carbon_pipeline.watttime.client import WattTimeClient
from carbon_pipeline.watttime.errors import (
    WattTimeAuthError,
    WattTimeBadRequestError,
    WattTimeError,
    WattTimeForbiddenError,
    WattTimePlanError,
    WattTimeResponseError,
    WattTimeUnavailableError,
    WattTimeUnknownRegionError,
)
from carbon_pipeline.watttime.resource import WattTimeResource
from carbon_pipeline.watttime.simulator import (
    SIMULATOR_PASSWORD,
    SIMULATOR_USERNAME,
    Fault,
    SimulatorConfig,
    SimulatorServer,
)
from carbon_pipeline_tests.support.scripted_watttime import SCRIPTED_TOKEN, ScriptedReply, scripted_server
from carbon_pipeline_tests.support.simulator_session import ClientFactory

HISTORICAL = "/v3/historical"
DAY_START = datetime(2024, 3, 1, tzinfo=UTC)
HOUR = (DAY_START, DAY_START + timedelta(hours=1))
POINTS_PER_HOUR = 12
SCRIPTED_PASSWORD = "pw-4a5b6c-never-log-me"


# ##### FIXTURES


@pytest.fixture
def start_simulator() -> Iterator[Callable[..., SimulatorServer]]:
    """Start simulators with a given SimulatorConfig; all are stopped after the test."""
    with ExitStack() as stack:
        yield lambda **config: stack.enter_context(SimulatorServer(SimulatorConfig(**config)))


@pytest.fixture
def sim(start_simulator: Callable[..., SimulatorServer]) -> SimulatorServer:
    return start_simulator()


@pytest.fixture
def make_client(sim: SimulatorServer, client_factory: ClientFactory) -> Callable[..., WattTimeClient]:
    """Build clients against `sim` (or another base URL) with FAST settings; all are closed after the test."""
    return lambda base_url=None, **overrides: client_factory(base_url or sim.base_url, **overrides)


def requests_to(sim: SimulatorServer, path: str) -> int:
    count: int = sim.state.stats()["requests"][path]
    return count


def one_hour(client: WattTimeClient, region: str = "CAISO_NORTH") -> pd.DataFrame:
    (chunk,) = client.historical(region, *HOUR)
    return chunk.frame


def signal_body(points: list[dict[str, Any]], **meta: Any) -> dict[str, Any]:
    return {"data": points, "meta": {"data_point_period_seconds": 300, "units": "lbs_co2_per_mwh", **meta}}


GOOD_BODY = signal_body([{"point_time": "2024-03-01T00:00:00+00:00", "value": 900.5}])


# ##### TESTS: tokens and logins


def test_logs_in_once_for_many_calls(sim: SimulatorServer, make_client: Callable[..., WattTimeClient]) -> None:
    client = make_client()
    for _ in range(5):
        assert len(one_hour(client)) == POINTS_PER_HOUR
    client.forecast("CAISO_NORTH", horizon_hours=1)
    client.my_access()
    assert sim.state.stats()["logins"] == 1


def test_concurrent_threads_share_one_login(
    start_simulator: Callable[..., SimulatorServer], make_client: Callable[..., WattTimeClient]
) -> None:
    slow_sim = start_simulator(latency_seconds=0.05)  # keeps the first login in flight while others arrive
    client = make_client(slow_sim.base_url)
    with ThreadPoolExecutor(max_workers=6) as pool:
        frames = list(pool.map(lambda _: one_hour(client), range(6)))
    assert [len(frame) for frame in frames] == [POINTS_PER_HOUR] * 6
    assert slow_sim.state.stats()["logins"] == 1


def test_token_expired_mid_run_costs_one_relogin(
    sim: SimulatorServer, make_client: Callable[..., WattTimeClient]
) -> None:
    client = make_client()
    one_hour(client)
    sim.state.expire_tokens()
    assert len(one_hour(client)) == POINTS_PER_HOUR
    stats = sim.state.stats()
    assert stats["logins"] == 2
    assert stats["statuses"][401] == 1
    assert stats["requests"][HISTORICAL] == 3


def test_concurrent_401s_share_one_relogin(
    start_simulator: Callable[..., SimulatorServer], make_client: Callable[..., WattTimeClient]
) -> None:
    slow_sim = start_simulator(latency_seconds=0.2)  # all six requests are in flight before any 401 returns
    client = make_client(slow_sim.base_url)
    one_hour(client)
    slow_sim.state.expire_tokens()
    with ThreadPoolExecutor(max_workers=6) as pool:
        frames = list(pool.map(lambda _: one_hour(client), range(6)))
    assert [len(frame) for frame in frames] == [POINTS_PER_HOUR] * 6
    stats = slow_sim.state.stats()
    assert stats["statuses"][401] >= 2  # tolerant of a thread starting late on a loaded machine
    assert stats["logins"] == 2


def test_second_401_after_relogin_is_an_auth_error(
    sim: SimulatorServer, make_client: Callable[..., WattTimeClient]
) -> None:
    client = make_client()
    sim.state.inject(Fault(kind="unauthorized", count=2, path=HISTORICAL))
    with pytest.raises(WattTimeAuthError, match="freshly issued token") as raised:
        one_hour(client)
    assert raised.value.request_id
    assert not raised.value.retryable
    assert sim.state.stats()["logins"] == 2
    assert requests_to(sim, HISTORICAL) == 2


def test_token_is_renewed_before_it_expires(
    start_simulator: Callable[..., SimulatorServer], make_client: Callable[..., WattTimeClient]
) -> None:
    short_lived = start_simulator(token_ttl_seconds=2.0)
    # The client assumes WattTime's 30-minute life; this margin makes it renew 0.5 s after each login.
    client = make_client(short_lived.base_url, token_refresh_margin_seconds=30 * 60 - 0.5)
    one_hour(client)
    time.sleep(0.7)
    one_hour(client)
    stats = short_lived.state.stats()
    assert stats["logins"] == 2
    assert stats["statuses"][401] == 0


def test_bad_credentials_name_the_user_but_not_the_password(
    sim: SimulatorServer, make_client: Callable[..., WattTimeClient], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong_password = "wrong-password-x9"
    client = make_client(password=wrong_password)
    with pytest.raises(WattTimeAuthError, match=f"username/password for user '{SIMULATOR_USERNAME}'") as raised:
        one_hour(client)
    assert "403" in str(raised.value)
    assert raised.value.request_id
    assert wrong_password not in str(raised.value) + repr(raised.value) + caplog.text + repr(client)
    assert requests_to(sim, HISTORICAL) == 0


def test_logins_are_rate_limited(sim: SimulatorServer, make_client: Callable[..., WattTimeClient]) -> None:
    client = make_client(login_limit=2, login_window_seconds=1.0)
    started = time.monotonic()
    for _ in range(3):  # each expiry forces a re-login: the third must wait for the first to leave the window
        one_hour(client)
        sim.state.expire_tokens()
    assert time.monotonic() - started >= 0.9
    assert sim.state.stats()["logins"] == 3


# ##### TESTS: retries


def test_429_without_retry_after_is_retried(sim: SimulatorServer, make_client: Callable[..., WattTimeClient]) -> None:
    client = make_client()
    sim.state.inject(Fault(kind="status", status=429, path=HISTORICAL))
    assert len(one_hour(client)) == POINTS_PER_HOUR
    assert sim.state.stats()["statuses"][429] == 1
    assert requests_to(sim, HISTORICAL) == 2


def test_429_retry_after_seconds_is_honoured(sim: SimulatorServer, make_client: Callable[..., WattTimeClient]) -> None:
    client = make_client()
    one_hour(client)  # log in first so only the retry wait is timed
    sim.state.inject(Fault(kind="status", status=429, retry_after=1, path=HISTORICAL))
    started = time.monotonic()
    one_hour(client)
    assert time.monotonic() - started >= 0.95


def test_retry_after_http_date_is_honoured(make_client: Callable[..., WattTimeClient]) -> None:
    later = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)
    with scripted_server((429, {"Retry-After": later}, {"error": "Too Many Requests"}), (200, {}, GOOD_BODY)) as server:
        client = make_client(server.base_url)
        started = time.monotonic()
        (chunk,) = client.historical("CAISO_NORTH", *HOUR)
        elapsed = time.monotonic() - started
    assert chunk.frame["value"].tolist() == [900.5]
    assert 0.9 <= elapsed < 5  # HTTP-dates have whole-second resolution


def test_retry_after_is_capped_by_the_retry_budget(
    sim: SimulatorServer, make_client: Callable[..., WattTimeClient]
) -> None:
    client = make_client(max_retry_seconds=0.5)
    sim.state.inject(Fault(kind="status", status=429, retry_after=60, count=5, path=HISTORICAL))
    started = time.monotonic()
    with pytest.raises(WattTimeUnavailableError, match="HTTP 429"):
        one_hour(client)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried(
    status: int, sim: SimulatorServer, make_client: Callable[..., WattTimeClient]
) -> None:
    client = make_client()
    sim.state.inject(Fault(kind="status", status=status, count=2, path=HISTORICAL))
    assert len(one_hour(client)) == POINTS_PER_HOUR
    assert sim.state.stats()["statuses"][status] == 2
    assert requests_to(sim, HISTORICAL) == 3


def test_exhausted_retries_raise_unavailable_with_context(
    sim: SimulatorServer, make_client: Callable[..., WattTimeClient], caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(max_attempts=3)
    sim.state.inject(Fault(kind="status", status=503, count=10, path=HISTORICAL))
    with pytest.raises(WattTimeUnavailableError) as raised:
        one_hour(client)
    error = raised.value
    message = str(error)
    assert error.retryable
    assert error.request_id and f"x-request-id: {error.request_id}" in message
    assert "3 attempt(s)" in message and "HTTP 503" in message
    assert "/v3/historical" in message and "CAISO_NORTH" in message and "2024-03-01T00:00:00+00:00" in message
    assert requests_to(sim, HISTORICAL) == 3
    assert error.request_id in caplog.text  # logged, not only raised


def test_retry_time_budget_stops_before_the_attempt_limit(
    sim: SimulatorServer, make_client: Callable[..., WattTimeClient]
) -> None:
    client = make_client(max_attempts=100, max_retry_seconds=0.5, backoff_base_seconds=0.1, backoff_max_seconds=0.2)
    sim.state.inject(Fault(kind="status", status=500, count=100, path=HISTORICAL))
    started = time.monotonic()
    with pytest.raises(WattTimeUnavailableError):
        one_hour(client)
    assert time.monotonic() - started < 3
    assert requests_to(sim, HISTORICAL) < 100


def test_timeout_is_retried(sim: SimulatorServer, make_client: Callable[..., WattTimeClient]) -> None:
    client = make_client(timeout_seconds=0.5)
    one_hour(client)
    sim.state.inject(Fault(kind="slow", delay_seconds=1.5, path=HISTORICAL))
    assert len(one_hour(client)) == POINTS_PER_HOUR
    assert sim.state.stats()["faults_applied"]["slow"] == 1
    assert requests_to(sim, HISTORICAL) == 3


@pytest.mark.parametrize("kind", ["reset", "truncated"])
def test_broken_connections_are_retried(
    kind: str, sim: SimulatorServer, make_client: Callable[..., WattTimeClient]
) -> None:
    client = make_client()
    sim.state.inject(Fault(kind=kind, path=HISTORICAL))
    assert len(one_hour(client)) == POINTS_PER_HOUR
    assert sim.state.stats()["faults_applied"][kind] == 1
    assert requests_to(sim, HISTORICAL) == 2


def test_malformed_json_is_retried_like_a_transient_failure(
    sim: SimulatorServer, make_client: Callable[..., WattTimeClient]
) -> None:
    client = make_client()
    sim.state.inject(Fault(kind="malformed_json", path=HISTORICAL))
    assert len(one_hour(client)) == POINTS_PER_HOUR
    assert requests_to(sim, HISTORICAL) == 2


def test_persistent_malformed_json_is_a_response_error(
    sim: SimulatorServer, make_client: Callable[..., WattTimeClient]
) -> None:
    client = make_client(max_attempts=2)
    sim.state.inject(Fault(kind="malformed_json", count=5, path=HISTORICAL))
    with pytest.raises(WattTimeResponseError, match="not valid JSON") as raised:
        one_hour(client)
    assert "/v3/historical" in str(raised.value) and "CAISO_NORTH" in str(raised.value)
    assert "2 attempt(s)" in str(raised.value)
    assert raised.value.request_id


# ##### TESTS: non-retryable errors


def test_region_outside_the_plan_is_a_plan_error(
    start_simulator: Callable[..., SimulatorServer], make_client: Callable[..., WattTimeClient]
) -> None:
    free = start_simulator(plan_regions=frozenset({"CAISO_NORTH"}))
    client = make_client(free.base_url)
    assert len(one_hour(client, "CAISO_NORTH")) == POINTS_PER_HOUR
    with pytest.raises(WattTimePlanError) as raised:
        one_hour(client, "PJM_DC")
    message = str(raised.value)
    assert "region PJM_DC" in message and "may only read CAISO_NORTH" in message and "/v3/my-access" in message
    assert raised.value.request_id
    assert free.state.stats()["statuses"][403] == 1  # not retried


def test_cloudfront_html_is_a_forbidden_error_without_the_html(
    sim: SimulatorServer, make_client: Callable[..., WattTimeClient]
) -> None:
    client = make_client()
    sim.state.inject(Fault(kind="html", path=HISTORICAL))
    with pytest.raises(WattTimeForbiddenError) as raised:
        one_hour(client)
    message = str(raised.value)
    assert "HTTP 403" in message and "Server: CloudFront" in message and "non-JSON" in message
    assert "<HTML" not in message and "could not be satisfied" not in message
    assert requests_to(sim, HISTORICAL) == 1


def test_json_403_without_invalid_scope_is_forbidden(make_client: Callable[..., WattTimeClient]) -> None:
    with scripted_server((403, {}, {"error": "Forbidden", "message": "account suspended"})) as server:
        client = make_client(server.base_url)
        with pytest.raises(WattTimeForbiddenError, match="account suspended"):
            one_hour(client)


def test_unknown_region_is_named(sim: SimulatorServer, make_client: Callable[..., WattTimeClient]) -> None:
    client = make_client()
    with pytest.raises(WattTimeUnknownRegionError, match="NOPE_REGION") as raised:
        one_hour(client, "NOPE_REGION")
    assert "Unknown region 'NOPE_REGION'" in str(raised.value)
    assert requests_to(sim, HISTORICAL) == 1


def test_other_400_is_a_bad_request(sim: SimulatorServer, make_client: Callable[..., WattTimeClient]) -> None:
    client = make_client()
    sim.state.inject(Fault(kind="status", status=400, path=HISTORICAL))
    with pytest.raises(WattTimeBadRequestError, match="HTTP 400: Bad Request: Simulated failure"):
        one_hour(client)


def test_fastapi_validation_detail_is_a_bad_request(
    sim: SimulatorServer, make_client: Callable[..., WattTimeClient]
) -> None:
    client = make_client(signal_type="not_a_signal")
    with pytest.raises(
        WattTimeBadRequestError, match=r"HTTP 422: query\.signal_type: value is not a valid enumeration"
    ):
        one_hour(client)


def test_error_msg_shape_is_a_bad_request(make_client: Callable[..., WattTimeClient]) -> None:
    body = {"error": "INVALID_QUERY_PARAMS", "msg": "You've provided invalid parameters in your query"}
    with scripted_server((422, {}, body)) as server:
        client = make_client(server.base_url)
        with pytest.raises(WattTimeBadRequestError, match="INVALID_QUERY_PARAMS: You've provided invalid parameters"):
            one_hour(client)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"data": []}, "no 'meta' object"),
        ({"meta": {}}, "'data' list"),
        (signal_body([{"point_time": "yesterday-ish", "value": 1.0}]), "unparseable point_time"),
        (signal_body([{"value": 1.0}]), "'point_time' and 'value'"),
        (signal_body([], units=42), "meta field 'units'"),
    ],
)
def test_unexpected_shapes_are_response_errors(
    body: dict[str, Any], problem: str, make_client: Callable[..., WattTimeClient]
) -> None:
    with scripted_server((200, {}, body)) as server:
        client = make_client(server.base_url)
        with pytest.raises(WattTimeResponseError, match=problem) as raised:
            one_hour(client)
    assert "GET /v3/historical, region CAISO_NORTH" in str(raised.value)
    assert raised.value.request_id == "req-2"


# ##### TESTS: data and windows


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
    free = start_simulator(plan_regions=frozenset({"CAISO_NORTH"}))
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


# ##### TESTS: chunks fetched concurrently

QUARTER_YEAR = (datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 3, 31, tzinfo=UTC))  # 90 days: three chunks


def chunk_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("watttime-chunk")]


def test_concurrent_chunks_come_back_in_order_and_complete(
    start_simulator: Callable[..., SimulatorServer], make_client: Callable[..., WattTimeClient]
) -> None:
    slow_sim = start_simulator(latency_seconds=0.1)  # keeps each chunk in flight long enough to overlap
    start, end = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 5, 1, tzinfo=UTC)  # 121 days: five chunks
    chunks = make_client(slow_sim.base_url).historical("CAISO_NORTH", start, end)
    edges = [start + timedelta(days=30) * n for n in range(5)] + [end]
    assert [(chunk.start, chunk.end) for chunk in chunks] == list(itertools.pairwise(edges))
    for chunk in chunks:
        times = chunk.frame["point_time"]
        assert times.is_monotonic_increasing
        assert times.iloc[0] == pd.Timestamp(chunk.start) and times.iloc[-1] < pd.Timestamp(chunk.end)
    assert sum(len(chunk.frame) for chunk in chunks) == 121 * 288
    stats = slow_sim.state.stats()
    assert sorted(query["start"] for query in stats["historical_queries"]) == [edge.isoformat() for edge in edges[:-1]]
    assert 2 <= stats["in_flight_peak"] <= 4
    assert stats["logins"] == 1
    assert chunk_threads() == []


def test_requests_in_flight_are_capped_across_threads(
    start_simulator: Callable[..., SimulatorServer], make_client: Callable[..., WattTimeClient]
) -> None:
    slow_sim = start_simulator(latency_seconds=0.1)
    client = make_client(slow_sim.base_url, max_concurrent_requests=2)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda region: client.historical(region, *QUARTER_YEAR), ["CAISO_NORTH", "DE", "FR"]))
    assert [len(chunks) for chunks in results] == [3, 3, 3]
    stats = slow_sim.state.stats()
    assert stats["requests"][HISTORICAL] == 9
    assert stats["in_flight_peak"] == 2


def test_threads_that_find_the_token_stale_share_one_login(
    start_simulator: Callable[..., SimulatorServer], make_client: Callable[..., WattTimeClient]
) -> None:
    slow_sim = start_simulator(latency_seconds=0.05)  # the renewal is still in flight when the other threads look
    # The client assumes WattTime's 30-minute life; this margin makes its token stale 0.5 s after each login.
    client = make_client(slow_sim.base_url, token_refresh_margin_seconds=30 * 60 - 0.5)
    one_hour(client)
    time.sleep(0.7)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda region: client.historical(region, *QUARTER_YEAR), ["CAISO_NORTH", "DE", "FR"]))
    assert [sum(len(chunk.frame) for chunk in chunks) for chunks in results] == [90 * 288] * 3
    stats = slow_sim.state.stats()
    assert stats["logins"] == 2
    assert stats["statuses"][401] == 0


def test_a_failed_chunk_raises_its_error_and_stops_the_call(
    start_simulator: Callable[..., SimulatorServer],
    make_client: Callable[..., WattTimeClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    slow_sim = start_simulator(latency_seconds=0.2)  # healthy chunks are still in flight when the failure is known
    client = make_client(slow_sim.base_url, max_attempts=5, max_retry_seconds=60.0)
    # The first chunk request to arrive is refused outright; the next ones are told to come back in 30 s,
    # a wait the failure must cut short.
    slow_sim.state.inject(Fault(kind="status", status=400, path=HISTORICAL))
    slow_sim.state.inject(Fault(kind="status", status=503, retry_after=30, count=50, path=HISTORICAL))
    started = time.monotonic()
    with pytest.raises(WattTimeBadRequestError, match="HTTP 400"):
        client.historical("CAISO_NORTH", datetime(2023, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC))
    assert time.monotonic() - started < 10
    assert chunk_threads() == []
    stats = slow_sim.state.stats()
    assert stats["statuses"][400] == 1
    assert stats["requests"][HISTORICAL] <= 4  # those in flight when it failed; 13 chunks, no retry sent
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1 and "WattTimeBadRequestError" in errors[0].getMessage()
    slow_sim.state.clear_faults()
    assert len(client.historical("CAISO_NORTH", *QUARTER_YEAR)) == 3  # no slot or permit was left taken


def test_rate_limit_holds_for_concurrent_chunked_calls(
    sim: SimulatorServer, make_client: Callable[..., WattTimeClient]
) -> None:
    client = make_client(requests_per_second=10.0)
    regions = ["CAISO_NORTH", "DE", "FR", "UK"]
    with ThreadPoolExecutor(max_workers=len(regions)) as pool:
        list(pool.map(lambda region: client.historical(region, *QUARTER_YEAR), regions))
    stats = sim.state.stats()
    arrivals = sorted(stats["arrivals"]["/login"] + stats["arrivals"][HISTORICAL])
    assert len(arrivals) == 1 + 3 * len(regions)
    # The client spaces every eleventh request 1.05 s after the first; 0.9 s leaves room for scheduling jitter
    # in the simulator's request threads while still catching a limiter that lets a burst through.
    busiest = max(bisect.bisect_left(arrivals, arrival + 0.9) - index for index, arrival in enumerate(arrivals))
    assert busiest <= 10
    assert arrivals[10] - arrivals[0] >= 0.9


# ##### TESTS: rate limit and secrets


def test_request_rate_is_limited_across_threads(
    sim: SimulatorServer, make_client: Callable[..., WattTimeClient]
) -> None:
    client = make_client(requests_per_second=10.0)
    client.my_access()  # the login and this call take the first two permits
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=5) as pool:
        list(pool.map(lambda _: client.my_access(), range(25)))
    elapsed = time.monotonic() - started
    assert 1.8 <= elapsed < 10
    assert requests_to(sim, "/v3/my-access") == 26


def test_secrets_never_reach_logs_errors_or_reprs(
    make_client: Callable[..., WattTimeClient], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    replies: list[ScriptedReply] = [
        (401, {}, {"error": "Unauthorized"}),  # forces a second login
        (500, {}, {"error": "Internal Server Error"}),  # a logged retry
        (200, {}, GOOD_BODY),
        (403, {}, {"error": "INVALID_SCOPE", "message": "Invalid scope. free access to CAISO_NORTH."}),
    ]
    with scripted_server(*replies) as server:
        client = make_client(server.base_url, username="alice", password=SCRIPTED_PASSWORD)
        assert len(one_hour(client)) == 1
        with pytest.raises(WattTimeError) as raised:
            one_hour(client, "PJM_DC")
    exposed = caplog.text + str(raised.value) + repr(raised.value) + repr(client)
    assert "alice" in caplog.text  # the login is logged, with the user name only
    assert SCRIPTED_TOKEN not in exposed
    assert SCRIPTED_PASSWORD not in exposed
    assert "Authorization" not in exposed and "Bearer" not in exposed and "Basic" not in exposed


# ##### TESTS: Dagster resource


def test_resource_builds_a_client_per_run_and_closes_it(sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATTTIME_USERNAME", SIMULATOR_USERNAME)
    monkeypatch.setenv("WATTTIME_PASSWORD", SIMULATOR_PASSWORD)
    resource = WattTimeResource(
        username=dg.EnvVar("WATTTIME_USERNAME"), password=dg.EnvVar("WATTTIME_PASSWORD"), base_url=sim.base_url
    )
    used: list[WattTimeClient] = []

    @dg.asset
    def probe(watttime: WattTimeResource) -> dg.MaterializeResult:
        used.append(watttime.get_client())
        return dg.MaterializeResult(metadata={"points": len(one_hour(used[0])), "source": watttime.source_name})

    with dg.instance_for_test() as instance:
        result = dg.materialize([probe], resources={"watttime": resource}, instance=instance)
        run_log = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert result.success
    metadata = result.asset_materializations_for_node("probe")[0].metadata
    assert (metadata["points"].value, metadata["source"].value) == (POINTS_PER_HOUR, "watttime")
    assert sim.state.stats()["logins"] == 1
    assert f"Logged in to WattTime as '{SIMULATOR_USERNAME}'" in run_log  # the client logs through context.log
    with pytest.raises(RuntimeError, match="closed"):
        used[0].my_access()
    run_record = "".join(run_log) + repr(result.dagster_run) + repr(resource) + str(resource)
    assert SIMULATOR_PASSWORD not in run_record


def test_resource_repr_hides_a_literal_password() -> None:
    resource = WattTimeResource(username="alice", password=SCRIPTED_PASSWORD)
    assert SCRIPTED_PASSWORD not in repr(resource) + str(resource)
    assert "alice" in repr(resource)


@pytest.mark.parametrize(
    "base_url", ["ftp://api.watttime.org", "api.watttime.org", "https://alice:pw@api.watttime.org"]
)
def test_resource_rejects_bad_base_urls(base_url: str) -> None:
    with pytest.raises(ValueError, match="base URL") as raised:
        WattTimeResource(username="alice", password="pw-secret", base_url=base_url)
    assert "pw" not in str(raised.value).replace("password", "")


def test_resource_client_is_only_available_during_a_run() -> None:
    with pytest.raises(dg.DagsterInvariantViolationError, match="only available during a run"):
        WattTimeResource(username="alice", password="pw-secret").get_client()


def test_resource_fields_are_documented() -> None:
    fields = WattTimeResource.model_fields
    for name in (
        "username",
        "password",
        "base_url",
        "signal_type",
        "timeout_seconds",
        "max_attempts",
        "max_retry_seconds",
        "requests_per_second",
    ):
        assert fields[name].description, name
    assert WattTimeResource.__doc__


# ##### TESTS: regions


@pytest.mark.parametrize("name", ["CAISO_NORTH", "DE", "NEM_NSW", "KOR"])
def test_valid_regions_pass(name: str) -> None:
    assert validate_region(name) == name


@pytest.mark.parametrize("name", ["", "caiso_north", "PJM-DC", "CAISO_NORTH\n", " DE", "DE;DROP"])
def test_invalid_regions_are_rejected_with_the_value(name: str) -> None:
    with pytest.raises(ValueError, match="Invalid WattTime region") as raised:
        validate_region(name)
    assert repr(name) in str(raised.value)


def test_parse_regions_strips_entries() -> None:
    assert parse_regions(" CAISO_NORTH , PJM_DC,DE ") == ("CAISO_NORTH", "PJM_DC", "DE")


@pytest.mark.parametrize(
    ("csv", "problem"),
    [
        ("", "empty entry"),
        ("CAISO_NORTH,,PJM_DC", "empty entry"),
        ("CAISO_NORTH,", "empty entry"),
        ("CAISO_NORTH,PJM_DC,CAISO_NORTH", "repeats CAISO_NORTH"),
        ("CAISO_NORTH,pjm_dc", "'pjm_dc'"),
    ],
)
def test_parse_regions_rejects_bad_lists(csv: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_regions(csv)


@pytest.mark.parametrize(
    ("region", "operator"),
    [
        ("CAISO_NORTH", "CAISO"),
        ("PJM_DC", "PJM"),
        ("ERCOT_EASTTX", "ERCOT"),
        ("PSCO", "PSCO"),
        ("FR", "RTE"),
        ("UK", "UK"),
    ],
)
def test_grid_operator_lookup(region: str, operator: str) -> None:
    assert grid_operator_for(region) == operator


def test_grid_operator_is_unknown_rather_than_guessed() -> None:
    assert grid_operator_for("CAISO_SOUTH") == "unknown"  # a split would have said CAISO
    assert grid_operator_for("PACX") == "unknown"


def test_every_grid_operator_key_is_a_valid_region() -> None:
    assert all(validate_region(region) == region for region in GRID_OPERATORS)
    assert all(GRID_OPERATORS.values())
