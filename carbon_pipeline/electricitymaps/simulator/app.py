"""Request handler of the simulated Electricity Maps API and its `/_simulator/` control surface.

Each data request is counted, then checked in the real API's order: token, rate, zone, plan; queued faults
then replace or damage the reply.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from carbon_pipeline.electricitymaps.endpoints import TOKEN_HEADER
from carbon_pipeline.electricitymaps.simulator.api import DATA_PATHS, check_access, failure, serve
from carbon_pipeline.electricitymaps.simulator.state import Fault, SimulatorState, retry_after_header
from carbon_pipeline.loopback_http import CONTROL_PREFIX, ApiError, ReplyHandler, StatefulHTTPServer

DAMAGE_KINDS = frozenset({"nulls", "out_of_range", "truncated"})
V3 = "/v3"


def simulator_http_server(address: tuple[str, int], state: SimulatorState) -> StatefulHTTPServer[SimulatorState]:
    return StatefulHTTPServer(address, ElectricityMapsHandler, state)


class ElectricityMapsHandler(ReplyHandler):
    server_version = "electricitymaps-simulator"
    server: StatefulHTTPServer[SimulatorState]

    def dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        try:
            if url.path.startswith(CONTROL_PREFIX):
                self.send_json(200, self._control(method, url.path))
            else:
                self.send_json(200, self._data(method, url.path, dict(parse_qsl(url.query))))
        except ApiError as error:
            self.send_json(error.status, error.body, error.headers)

    def _data(self, method: str, path: str, params: dict[str, str]) -> dict[str, Any]:
        state = self.server.state
        endpoint = path.removeprefix(V3)
        if method != "GET" or not path.startswith(V3) or endpoint not in DATA_PATHS:
            raise failure(404, f"No route {method} {path}")
        state.count_request(endpoint)
        token = self.headers.get(TOKEN_HEADER, "")
        check_access(state, endpoint, token, params)
        wait = state.admit(token, time.monotonic())
        if wait is not None:
            limit = str(state.config.rate_limit)
            headers = {
                "Retry-After": retry_after_header(wait),
                "X-RateLimit-Limit": limit,
                "X-RateLimit-Remaining": "0",
            }
            raise failure(429, "Rate limit exceeded", headers)
        fault = state.take_fault(endpoint, frozenset({"status"}))
        if fault is not None:
            headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
            raise failure(fault.status, "Simulated failure", headers)
        reply = serve(state, endpoint, params)
        damage = state.take_fault(endpoint, DAMAGE_KINDS)
        if damage is not None:
            _damage(reply, damage)
        return reply

    def _control(self, method: str, path: str) -> dict[str, Any]:
        state = self.server.state
        name = path.removeprefix(CONTROL_PREFIX)
        if (method, name) == ("GET", "stats"):
            return state.stats()
        if (method, name) == ("DELETE", "faults"):
            state.clear_faults()
            return {"ok": "Faults cleared"}
        if (method, name) == ("POST", "faults"):
            fault = self._fault()
            state.inject(fault)
            return {"ok": "Fault queued", "fault": asdict(fault)}
        raise failure(404, f"No control {method} {path}")

    def _fault(self) -> Fault:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"null")
            return Fault(**body)
        except (TypeError, ValueError) as exc:
            raise failure(422, f"a fault is a JSON object with a known kind: {exc}") from None


def _damage(reply: dict[str, Any], fault: Fault) -> None:
    """Spoils the first point of the reply, or drops its last, as an upstream data problem would."""
    points = reply.get("history") or reply.get("data") or reply.get("forecast") or [reply]
    if fault.kind == "truncated":
        del points[-1]
    else:
        points[0]["carbonIntensity"] = None if fault.kind == "nulls" else -5.0
