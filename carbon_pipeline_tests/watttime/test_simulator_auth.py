"""The WattTime simulator's logins and tokens over loopback HTTP: token life, 401 and 403 replies, the login and
data rate limits, and secrets kept out of its log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from carbon_pipeline.watttime.simulator import SIMULATOR_PASSWORD, SIMULATOR_USERNAME
from carbon_pipeline_tests.support.simulator_session import Sim


def test_login_token_authorizes_data_calls(sim: Sim) -> None:
    login = sim.login()
    assert login.status_code == 200
    assert set(login.json()) == {"token"}
    assert sim.historical().status_code == 200


def test_token_expires_after_its_ttl(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(token_ttl_seconds=1)
    assert sim.historical().status_code == 200
    sim.clock.advance(1)
    expired = sim.historical()
    assert expired.status_code == 401
    assert "error" in expired.json()


def test_expire_tokens_forces_a_new_login(sim: Sim) -> None:
    assert sim.historical().status_code == 200
    sim.server.state.expire_tokens()
    assert sim.historical().status_code == 401
    sim.token = None
    assert sim.historical().status_code == 200


def test_issued_tokens_keeps_every_token_a_login_handed_out_even_after_it_expired(sim: Sim) -> None:
    """Tests look for them where secrets must never appear, so a forgotten token is still listed."""
    first = sim.login().json()["token"]
    sim.server.state.expire_tokens()
    second = sim.login().json()["token"]
    sim.server.state.reset_stats()
    assert sim.server.state.issued_tokens() == (first, second)


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", "Basic c2ltdWxhdG9yOng="])
def test_data_call_without_a_valid_token_is_401(sim: Sim, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = sim.client.get("/v3/my-access", headers=headers)
    assert response.status_code == 401
    assert "error" in response.json()


@pytest.mark.parametrize(
    "auth", [(SIMULATOR_USERNAME, "wrong-password"), ("nobody", SIMULATOR_PASSWORD), None], ids=str
)
def test_bad_or_missing_credentials_are_403(sim: Sim, auth: tuple[str, str] | None) -> None:
    response = sim.client.get("/login", auth=auth)
    assert response.status_code == 403
    assert "error" in response.json()


def test_login_rate_limit_gives_429_without_retry_after(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(login_rate_limit=3)
    assert [sim.login().status_code for _ in range(3)] == [200, 200, 200]
    limited = sim.login()
    assert limited.status_code == 429
    assert "retry-after" not in limited.headers
    sim.clock.advance(300)
    assert sim.login().status_code == 200


def test_data_rate_limit_is_per_rolling_window(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(data_rate_limit=2)
    assert [sim.historical().status_code for _ in range(3)] == [200, 200, 429]
    sim.clock.advance(300)
    assert sim.historical().status_code == 200


def test_passwords_and_tokens_never_reach_the_log(sim: Sim, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="carbon_pipeline.watttime.simulator")
    sim.historical()
    assert "GET /v3/historical" in caplog.text
    assert sim.token is not None
    assert sim.token not in caplog.text
    assert SIMULATOR_PASSWORD not in caplog.text
