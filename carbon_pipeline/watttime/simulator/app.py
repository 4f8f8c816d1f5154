"""Routes and request handler of the simulated WattTime v3 API (on `carbon_pipeline.loopback_http`).

The endpoints live in modules of their own:
`account` (/login, /register), `history` (/v3/historical), `forecasts` (/v3/forecast and its archive),
`access` (/v3/my-access, /v3/region-from-loc), `signal_index` (/v3/signal-index) and `control` (/_simulator/...).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from carbon_pipeline.loopback_http import CONTROL_PREFIX, JSON_TYPE, ReplyHandler, StatefulHTTPServer
from carbon_pipeline.watttime.simulator.access import my_access, region_from_loc
from carbon_pipeline.watttime.simulator.account import login, register
from carbon_pipeline.watttime.simulator.api_errors import (
    ApiError,
    error,
    invalid_scope,
    outside_forecast_archive,
    unauthorized,
)
from carbon_pipeline.watttime.simulator.control import add_fault, clear_faults, expire_tokens, stats
from carbon_pipeline.watttime.simulator.faults import Fault
from carbon_pipeline.watttime.simulator.forecasts import forecast, forecast_historical
from carbon_pipeline.watttime.simulator.history import historical
from carbon_pipeline.watttime.simulator.queries import Request, authenticate
from carbon_pipeline.watttime.simulator.signal_index import signal_index
from carbon_pipeline.watttime.simulator.state import SimulatorState

CLOUDFRONT_HTML = (
    b'<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN" "http://www.w3.org/TR/html4/loose.dtd">\n'
    b"<HTML><HEAD><TITLE>ERROR: The request could not be satisfied</TITLE></HEAD><BODY>\n"
    b"<H1>403 ERROR</H1>\n<H2>The request could not be satisfied.</H2>\n"
    b"Request blocked. We can't connect to the server for this app or website at this time.\n"
    b"</BODY></HTML>\n"
)
CUT_OFF_JSON = b'{"data":[{"point_time":"2025-01-01T00:00:00+00:00","value":81'

Endpoint = Callable[[SimulatorState, Request], Mapping[str, Any]]
ROUTES: dict[str, dict[str, Endpoint]] = {
    "/login": {"GET": login},
    "/register": {"POST": register},
    "/v3/historical": {"GET": historical},
    "/v3/forecast": {"GET": forecast},
    "/v3/forecast/historical": {"GET": forecast_historical},
    "/v3/my-access": {"GET": my_access},
    "/v3/region-from-loc": {"GET": region_from_loc},
    "/v3/signal-index": {"GET": signal_index},
    f"{CONTROL_PREFIX}faults": {"POST": add_fault, "DELETE": clear_faults},
    f"{CONTROL_PREFIX}expire-tokens": {"POST": expire_tokens},
    f"{CONTROL_PREFIX}stats": {"GET": stats},
}


def _route(method: str, path: str) -> Endpoint:
    methods = ROUTES.get(path)
    if methods is None:
        raise ApiError(404, {"detail": "Not Found"})
    if method not in methods:
        raise ApiError(405, {"detail": "Method Not Allowed"})
    return methods[method]


def _fault_error(fault: Fault) -> ApiError:
    if fault.kind == "unauthorized":
        return unauthorized()
    if fault.kind == "invalid_scope":
        return invalid_scope()
    if fault.kind == "outside_archive":
        return outside_forecast_archive()
    status = fault.status or 500
    return error(status, BaseHTTPRequestHandler.responses.get(status, ("Error",))[0], "Simulated failure")


def simulator_http_server(address: tuple[str, int], state: SimulatorState) -> StatefulHTTPServer[SimulatorState]:
    return StatefulHTTPServer(address, SimulatorHandler, state)


class SimulatorHandler(ReplyHandler):
    server_version = "watttime-simulator"
    server: StatefulHTTPServer[SimulatorState]

    def dispatch(self, method: str) -> None:
        state = self.server.state
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = Request(
            path=url.path,
            params=dict(parse_qsl(url.query, keep_blank_values=True)),
            body=self.rfile.read(length) if length > 0 else b"",
            authorization=self.headers.get("Authorization", ""),
        )
        try:
            endpoint = _route(method, request.path)
            if request.path.startswith(CONTROL_PREFIX):
                self.send_json(200, endpoint(state, request))
            else:
                with state.serving(request.path, request.params):
                    self._serve_api(endpoint, request)
        except ApiError as error:
            self.send_json(error.status, error.body)

    def _serve_api(self, endpoint: Endpoint, request: Request) -> None:
        state = self.server.state
        if self._serve_http_fault(request):
            return
        if state.config.latency_seconds:
            time.sleep(state.config.latency_seconds)
        if request.path.startswith("/v3/"):
            request = replace(request, user=authenticate(state, request))
        self.send_json(200, endpoint(state, request))

    def _serve_http_fault(self, request: Request) -> bool:
        """Serves a queued HTTP-level fault; True when the request is finished."""
        fault = self.server.state.take_fault(request.path, data_level=False, region=request.params.get("region"))
        if fault is None:
            return False
        if fault.kind == "slow":
            time.sleep(fault.delay_seconds)
            return False
        headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
        if fault.kind == "reset":
            self.reset_connection()
        elif fault.kind == "truncated":
            self.send(200, CUT_OFF_JSON, JSON_TYPE, declared_length=len(CUT_OFF_JSON) + 512)
            self.close_connection = True
        elif fault.kind == "malformed_json":
            self.send(200, CUT_OFF_JSON, JSON_TYPE)
        elif fault.kind == "html":
            cloudfront = {"Server": "CloudFront", "X-Cache": "Error from cloudfront"}
            self.send(403, CLOUDFRONT_HTML, "text/html", {**headers, **cloudfront})
        else:
            error = _fault_error(fault)
            self.send_json(error.status, error.body, headers)
        return True
