"""The WattTime Dagster resource: a client per run, closed after it, and its fields and base URL checked
without showing the password.
"""

from __future__ import annotations

import dagster as dg
import pytest

from carbon_pipeline.watttime.client import WattTimeClient
from carbon_pipeline.watttime.resource import WattTimeResource
from carbon_pipeline.watttime.simulator import SIMULATOR_PASSWORD, SIMULATOR_USERNAME, SimulatorServer
from carbon_pipeline_tests.support.watttime_calls import POINTS_PER_HOUR, SCRIPTED_PASSWORD, one_hour


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
