"""The WattTime client's errors that are not retried: plan and CloudFront 403s, unknown regions, 400/422
bodies in each shape WattTime uses, and replies of an unexpected shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from carbon_pipeline.watttime.client import WattTimeClient
from carbon_pipeline.watttime.errors import (
    WattTimeBadRequestError,
    WattTimeForbiddenError,
    WattTimePlanError,
    WattTimeResponseError,
    WattTimeUnknownRegionError,
)
from carbon_pipeline.watttime.simulator import Fault, SimulatorServer
from carbon_pipeline_tests.support.scripted_watttime import scripted_server
from carbon_pipeline_tests.support.watttime_calls import HISTORICAL, POINTS_PER_HOUR, one_hour, requests_to, signal_body


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
