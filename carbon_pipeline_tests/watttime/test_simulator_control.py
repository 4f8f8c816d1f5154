"""The WattTime simulator's control endpoints and statistics, its HTTP transport, and the standalone command."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from carbon_pipeline.watttime.simulator import SIMULATOR_PASSWORD, SIMULATOR_USERNAME
from carbon_pipeline_tests.support.simulator_session import DAY_START, Sim


def test_control_endpoints_drive_the_simulator_over_http(sim: Sim) -> None:
    assert sim.client.post("/_simulator/faults", json={"kind": "status", "status": 503}).status_code == 200
    assert sim.historical().status_code == 503
    sim.client.post("/_simulator/faults", json={"kind": "status", "status": 502})
    assert sim.client.delete("/_simulator/faults").status_code == 200
    assert sim.historical().status_code == 200
    sim.client.post("/_simulator/expire-tokens")
    assert sim.historical().status_code == 401
    stats = sim.client.get("/_simulator/stats").json()
    assert stats["statuses"] == {"200": 2, "503": 1, "401": 1}
    assert stats["faults_applied"] == {"status": 1}


def test_control_endpoint_rejects_an_invalid_fault(sim: Sim) -> None:
    response = sim.client.post("/_simulator/faults", json={"kind": "explode"})
    assert response.status_code == 422


def test_stats_record_each_historical_query(sim: Sim) -> None:
    sim.historical(end="2025-01-01T00:10:00+00:00")
    sim.forecast()
    stats = sim.server.state.stats()
    assert stats["logins"] == 1
    assert stats["requests"] == {"/login": 1, "/v3/historical": 1, "/v3/forecast": 1}
    assert stats["historical_queries"] == [
        {"region": "CAISO_NORTH", "signal_type": "co2_moer", "start": DAY_START, "end": "2025-01-01T00:10:00+00:00"}
    ]
    sim.server.state.reset_stats()
    assert sim.server.state.stats()["historical_queries"] == []


def test_stats_count_arrivals_and_requests_in_flight(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(latency_seconds=0.2)  # all three requests are being served at once
    token = sim.login().json()["token"]
    before = time.monotonic()

    def historical(_: int) -> int:
        response = sim.client.get(
            "/v3/historical",
            params={"region": "CAISO_NORTH", "signal_type": "co2_moer", "start": DAY_START, "end": DAY_START},
            headers={"Authorization": f"Bearer {token}"},
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=3) as pool:
        assert list(pool.map(historical, range(3))) == [200] * 3
    stats = sim.server.state.stats()
    assert stats["in_flight_peak"] == 3
    assert len(stats["arrivals"]["/login"]) == 1
    assert len(stats["arrivals"]["/v3/historical"]) == 3
    assert all(before <= arrival <= time.monotonic() for arrival in stats["arrivals"]["/v3/historical"])


def test_unknown_paths_and_methods(sim: Sim) -> None:
    assert sim.client.get("/v3/nothing-here").status_code == 404
    assert sim.client.post("/login").status_code == 405


def test_keep_alive_reuses_one_connection(sim: Sim) -> None:
    def client_port(response: httpx.Response) -> int:
        return int(response.extensions["network_stream"].get_extra_info("client_addr")[1])

    first, second = sim.login(), sim.historical()
    assert client_port(first) == client_port(second)


@pytest.mark.parametrize(
    "launcher",
    [
        [sys.executable, "-m", "carbon_pipeline.watttime.simulator"],
        [str(Path(sys.executable).parent / "carbon-pipeline"), "simulator"],
    ],
    ids=["module", "carbon-pipeline"],
)
def test_runs_standalone_and_prints_no_password(launcher: list[str]) -> None:
    command = [*launcher, "--port", "0", "--free-plan"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as process:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        try:
            base_url = first_line.split()[-1]
            response = httpx.get(f"{base_url}/login", auth=(SIMULATOR_USERNAME, SIMULATOR_PASSWORD), timeout=5)
            assert response.status_code == 200
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=10)
        output = first_line + process.stdout.read()
    assert process.returncode == 0
    assert f"username: {SIMULATOR_USERNAME}" in output
    assert SIMULATOR_PASSWORD not in output


def test_standalone_rate_limits_are_options() -> None:
    command = [sys.executable, "-m", "carbon_pipeline.watttime.simulator", "--port", "0"]
    command += ["--data-rate-limit", "1", "--login-rate-limit", "1"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as process:
        assert process.stdout is not None
        try:
            base_url = process.stdout.readline().split()[-1]
            with httpx.Client(base_url=base_url, timeout=5) as client:
                logins = [client.get("/login", auth=(SIMULATOR_USERNAME, SIMULATOR_PASSWORD)) for _ in range(2)]
                assert [login.status_code for login in logins] == [200, 429]
                params = {"region": "CAISO_NORTH", "signal_type": "co2_moer", "start": DAY_START, "end": DAY_START}
                headers = {"Authorization": f"Bearer {logins[0].json()['token']}"}
                statuses = [client.get("/v3/historical", params=params, headers=headers).status_code for _ in range(2)]
                assert statuses == [200, 429]
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=10)
    assert process.returncode == 0
