"""The WattTime client's logins and tokens: one login shared by threads, renewal before expiry and after a
401, the login rate limit, and credentials kept out of logs, errors and reprs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from carbon_pipeline.watttime.client import WattTimeClient
from carbon_pipeline.watttime.errors import WattTimeAuthError, WattTimeError
from carbon_pipeline.watttime.simulator import SIMULATOR_USERNAME, Fault, SimulatorServer
from carbon_pipeline_tests.support.scripted_watttime import SCRIPTED_TOKEN, ScriptedReply, scripted_server
from carbon_pipeline_tests.support.watttime_calls import (
    GOOD_BODY,
    HISTORICAL,
    POINTS_PER_HOUR,
    SCRIPTED_PASSWORD,
    one_hour,
    requests_to,
)


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
