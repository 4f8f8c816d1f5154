"""Endpoints and request handler of the simulated WattTime v3 API.

Built on `http.server` rather than an ASGI framework because faults such as connection
resets and truncated bodies need direct control of the socket.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import socket
import struct
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from carbon_pipeline.watttime.simulator.faults import Fault, corrupt
from carbon_pipeline.watttime.simulator.signal import DATA_START, is_imputed, moer_at, point_epochs
from carbon_pipeline.watttime.simulator.state import SimulatorState

logger = logging.getLogger(__name__)

DOCS_URL = "https://docs.watttime.org/"
CONTROL_PREFIX = "/_simulator/"
JSON_TYPE = "application/json"
# Every signal follows the MOER shape; WattTime does not document the unit string of health_damage.
SIGNAL_UNITS = {"co2_moer": "lbs_co2_per_mwh", "co2_aoer": "lbs_co2_per_mwh", "health_damage": "usd_per_mwh"}
MAX_SPAN = timedelta(days=32)
MAX_HORIZON_HOURS = 72
FORECAST_PERIOD_SECONDS = 300
MODEL_TYPE = "binned_regression"
INVALID_SCOPE_MESSAGE = (
    "Invalid scope. You do not have sufficient access to this resource. See https://api.watttime.org/plans/ "
    "for more information or email contact@watttime.org for pricing. "
    "Please note that all users are allowed free access to CAISO_NORTH."
)
CLOUDFRONT_HTML = (
    b'<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN" "http://www.w3.org/TR/html4/loose.dtd">\n'
    b"<HTML><HEAD><TITLE>ERROR: The request could not be satisfied</TITLE></HEAD><BODY>\n"
    b"<H1>403 ERROR</H1>\n<H2>The request could not be satisfied.</H2>\n"
    b"Request blocked. We can't connect to the server for this app or website at this time.\n"
    b"</BODY></HTML>\n"
)
CUT_OFF_JSON = b'{"data":[{"point_time":"2025-01-01T00:00:00+00:00","value":81'
_BOOLEANS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}


@dataclass(frozen=True)
class Request:
    path: str
    params: Mapping[str, str]
    body: bytes
    authorization: str
    user: str = ""


class ApiError(Exception):
    """An error reply; raising it keeps the endpoints free of reply plumbing."""

    def __init__(self, status: int, body: Mapping[str, Any]) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def _error(status: int, error: str, message: str) -> ApiError:
    return ApiError(status, {"error": error, "message": message, "docs": DOCS_URL})


def _invalid_query(message: str) -> ApiError:
    return _error(400, "INVALID_QUERY_PARAMS", message)


def _detail(*loc: str, msg: str, error_type: str) -> dict[str, Any]:
    """One item of FastAPI's 422 `detail` list, the shape the real API uses for schema violations."""
    return {"loc": list(loc), "msg": msg, "type": error_type}


def _missing(location: str, name: str) -> dict[str, Any]:
    return _detail(location, name, msg="field required", error_type="value_error.missing")


def _unprocessable(*details: dict[str, Any]) -> ApiError:
    return ApiError(422, {"detail": list(details)})


def _unauthorized() -> ApiError:
    return _error(401, "Unauthorized", "Missing, invalid or expired token; log in again")


def _invalid_scope() -> ApiError:
    return _error(403, "INVALID_SCOPE", INVALID_SCOPE_MESSAGE)


def _too_many_requests() -> ApiError:
    return _error(429, "Too Many Requests", "Rate limit exceeded")


def _basic_credentials(authorization: str) -> tuple[str, str]:
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    username, _, password = decoded.partition(":")
    return username, password


def _authenticate(state: SimulatorState, request: Request) -> str:
    scheme, _, token = request.authorization.partition(" ")
    user = state.user_for_token(token) if scheme.lower() == "bearer" and token else None
    if user is None:
        raise _unauthorized()
    if not state.allow("data", user, state.config.data_rate_limit):
        raise _too_many_requests()
    return user


def _require(request: Request, *names: str) -> None:
    missing = [_missing("query", name) for name in names if name not in request.params]
    if missing:
        raise _unprocessable(*missing)


def _series_query(state: SimulatorState, request: Request) -> tuple[str, str]:
    """Validates what /v3/historical and /v3/forecast share: region, signal type, plan and model."""
    _require(request, "region", "signal_type")
    region, signal_type = request.params["region"], request.params["signal_type"]
    if signal_type not in SIGNAL_UNITS:
        allowed = ", ".join(f"'{name}'" for name in SIGNAL_UNITS)
        message = f"value is not a valid enumeration member; permitted: {allowed}"
        raise _unprocessable(_detail("query", "signal_type", msg=message, error_type="type_error.enum"))
    if region not in state.regions:
        raise _invalid_query(f"Unknown region '{region}' for signal_type {signal_type}")
    plan = state.plan_regions(request.user)
    if plan is not None and region not in plan:
        raise _invalid_scope()
    if request.params.get("model", state.config.model_date) != state.config.model_date:
        raise _invalid_query(f"Unknown model '{request.params['model']}' for region '{region}'")
    return region, signal_type


def _timestamp(request: Request, name: str) -> datetime:
    raw = request.params[name]
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        message = "invalid datetime format"
        raise _unprocessable(_detail("query", name, msg=message, error_type="value_error.datetime")) from None
    if value.tzinfo is None:
        raise _invalid_query(f"'{name}' must include a timezone, for example {raw}+00:00")
    return value.astimezone(UTC)


def _boolean(request: Request, name: str) -> bool:
    raw = request.params.get(name, "false").lower()
    if raw not in _BOOLEANS:
        message = "value could not be parsed to a boolean"
        raise _unprocessable(_detail("query", name, msg=message, error_type="type_error.bool"))
    return _BOOLEANS[raw]


def _horizon_hours(request: Request) -> int:
    raw = request.params.get("horizon_hours", "24")
    if not raw.isdigit() or int(raw) > MAX_HORIZON_HOURS:
        message = f"ensure this value is an integer from 0 to {MAX_HORIZON_HOURS}"
        raise _unprocessable(_detail("query", "horizon_hours", msg=message, error_type="value_error.number"))
    return int(raw)


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def _points(region: str, epochs: Sequence[int], with_imputed_marker: bool = False) -> list[dict[str, Any]]:
    points = [{"point_time": _iso(epoch), "value": moer_at(region, epoch)} for epoch in epochs]
    if with_imputed_marker:
        for point, epoch in zip(points, epochs, strict=True):
            point["imputed_data_used"] = is_imputed(region, epoch)
    return points


def _reply(
    state: SimulatorState,
    request: Request,
    *,
    region: str,
    signal_type: str,
    data: list[dict[str, Any]],
    window_end: datetime,
    **meta_extra: Any,
) -> dict[str, Any]:
    """The `{"data", "meta"}` document, damaged by a data-level fault when one is queued."""
    meta = {
        "data_point_period_seconds": state.regions[region].period_seconds,
        "region": region,
        "signal_type": signal_type,
        "units": SIGNAL_UNITS[signal_type],
        "warnings": [],
        "model": {"date": state.config.model_date},
        **meta_extra,
    }
    body = {"data": data, "meta": meta}
    fault = state.take_fault(request.path, data_level=True)
    if fault is not None:
        corrupt(fault.kind, body, window_end)
    return body


def login(state: SimulatorState, request: Request) -> dict[str, Any]:
    username, password = _basic_credentials(request.authorization)
    if not state.allow("login", username, state.config.login_rate_limit):
        raise _too_many_requests()
    token = state.login(username, password) if username else None
    if token is None:
        raise ApiError(403, {"error": "Invalid username or password"})
    return {"token": token}


def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.body or b"null")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise _unprocessable(_detail("body", msg="a JSON object is required", error_type="type_error.dict"))
    return body


def _password_problems(password: str) -> list[str]:
    checks = [
        (len(password) >= 8, "must be at least 8 characters long"),
        (any(c.isalpha() for c in password), "must contain a letter"),
        (any(c.isdigit() for c in password), "must contain a number"),
        (any(not c.isalnum() for c in password), "must contain a special character"),
    ]
    return [f"password {message}" for ok, message in checks if not ok]


def register(state: SimulatorState, request: Request) -> dict[str, Any]:
    body = _json_object(request)
    details = [
        _missing("body", name)
        for name in ("username", "password", "email")
        if not isinstance(body.get(name), str) or not body[name]
    ]
    if not details:
        details = [
            _detail("body", "password", msg=problem, error_type="value_error")
            for problem in _password_problems(body["password"])
        ]
        if "@" not in body["email"]:
            message = "value is not a valid email address"
            details.append(_detail("body", "email", msg=message, error_type="value_error.email"))
    if details:
        raise _unprocessable(*details)
    if not state.register(body["username"], body["password"]):
        raise ApiError(400, {"error": "That username is taken. Please choose another."})
    return {"ok": "User created", "user": body["username"]}


def historical(state: SimulatorState, request: Request) -> dict[str, Any]:
    region, signal_type = _series_query(state, request)
    _require(request, "start", "end")
    start, end = _timestamp(request, "start"), _timestamp(request, "end")
    if end < start:
        raise _invalid_query("'end' must not be before 'start'")
    if end - start > MAX_SPAN:
        raise _invalid_query("The requested time range exceeds the maximum of 32 days per request")
    with_imputed_marker = _boolean(request, "include_imputed_marker")
    published_until = min(end, state.now() - timedelta(seconds=state.config.publication_lag_seconds))
    epochs = point_epochs(state.regions[region].period_seconds, max(start, DATA_START), published_until)
    data = _points(region, epochs, with_imputed_marker)
    model = {"date": state.config.model_date, "type": MODEL_TYPE}
    return _reply(state, request, region=region, signal_type=signal_type, data=data, window_end=end, model=model)


def forecast(state: SimulatorState, request: Request) -> dict[str, Any]:
    """The latest forecast, whose first point is the current period, like the real endpoint."""
    region, signal_type = _series_query(state, request)
    horizon_hours = _horizon_hours(request)
    now = int(state.now().timestamp())
    generated_at = now - now % FORECAST_PERIOD_SECONDS
    period = state.regions[region].period_seconds
    first = now - now % period
    epochs = range(first, first + max(1, horizon_hours * 3600 // period) * period, period)
    return _reply(
        state,
        request,
        region=region,
        signal_type=signal_type,
        data=_points(region, epochs),
        window_end=datetime.fromtimestamp(epochs[-1], UTC),
        generated_at=_iso(generated_at),
        generated_at_period_seconds=FORECAST_PERIOD_SECONDS,
    )


def _access_region(state: SimulatorState, name: str) -> dict[str, Any]:
    region = state.regions[name]
    model = {
        "model": state.config.model_date,
        "data_start": DATA_START.date().isoformat(),
        "train_start": DATA_START.date().isoformat(),
        "train_end": state.config.model_date,
    }
    return {
        "region": name,
        "region_full_name": region.full_name,
        "parent": region.parent,
        "data_point_period_seconds": region.period_seconds,
        "endpoints": [
            {"endpoint": "v3/forecast", "models": [model]},
            {"endpoint": "v3/historical", "models": [{**model, "type": MODEL_TYPE}]},
        ],
    }


def my_access(state: SimulatorState, request: Request) -> dict[str, Any]:
    plan = state.plan_regions(request.user)
    names = [
        name for name in state.regions if (plan is None or name in plan) and request.params.get("region", name) == name
    ]
    signals = [signal for signal in SIGNAL_UNITS if request.params.get("signal_type", signal) == signal]
    return {
        "signal_types": [
            {"signal_type": signal, "regions": [_access_region(state, name) for name in names]} for signal in signals
        ]
    }


def add_fault(state: SimulatorState, request: Request) -> dict[str, Any]:
    try:
        fault = Fault(**_json_object(request))
    except (TypeError, ValueError) as exc:
        raise ApiError(422, {"detail": str(exc)}) from None
    state.inject(fault)
    return {"ok": "Fault queued", "fault": asdict(fault)}


def clear_faults(state: SimulatorState, request: Request) -> dict[str, Any]:
    state.clear_faults()
    return {"ok": "Faults cleared"}


def expire_tokens(state: SimulatorState, request: Request) -> dict[str, Any]:
    state.expire_tokens()
    return {"ok": "Tokens expired"}


def stats(state: SimulatorState, request: Request) -> dict[str, Any]:
    return state.stats()


Endpoint = Callable[[SimulatorState, Request], Mapping[str, Any]]
ROUTES: dict[str, dict[str, Endpoint]] = {
    "/login": {"GET": login},
    "/register": {"POST": register},
    "/v3/historical": {"GET": historical},
    "/v3/forecast": {"GET": forecast},
    "/v3/my-access": {"GET": my_access},
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
        return _unauthorized()
    if fault.kind == "invalid_scope":
        return _invalid_scope()
    status = fault.status or 500
    return _error(status, BaseHTTPRequestHandler.responses.get(status, ("Error",))[0], "Simulated failure")


class SimulatorHTTPServer(ThreadingHTTPServer):
    """Threaded server carrying the shared state; client disconnects are routine, so errors log at DEBUG."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: SimulatorState) -> None:
        super().__init__(address, SimulatorHandler)
        self.state = state

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("Connection from %s ended with an error", client_address, exc_info=True)


class SimulatorHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "watttime-simulator"
    timeout = 30  # seconds before an idle keep-alive connection is dropped
    disable_nagle_algorithm = True  # headers and body go out in separate writes; Nagle would stall the body ~40 ms
    server: SimulatorHTTPServer

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def _dispatch(self, method: str) -> None:
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
                self._send_json(200, endpoint(state, request))
            else:
                with state.serving(request.path, request.params):
                    self._serve_api(endpoint, request)
        except ApiError as error:
            self._send_json(error.status, error.body)

    def _serve_api(self, endpoint: Endpoint, request: Request) -> None:
        state = self.server.state
        if self._serve_http_fault(request.path):
            return
        if state.config.latency_seconds:
            time.sleep(state.config.latency_seconds)
        if request.path.startswith("/v3/"):
            request = replace(request, user=_authenticate(state, request))
        self._send_json(200, endpoint(state, request))

    def _serve_http_fault(self, path: str) -> bool:
        """Serves a queued HTTP-level fault; True when the request is finished."""
        fault = self.server.state.take_fault(path, data_level=False)
        if fault is None:
            return False
        if fault.kind == "slow":
            time.sleep(fault.delay_seconds)
            return False
        headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
        if fault.kind == "reset":
            self._reset_connection()
        elif fault.kind == "truncated":
            self._send(200, CUT_OFF_JSON, JSON_TYPE, declared_length=len(CUT_OFF_JSON) + 512)
            self.close_connection = True
        elif fault.kind == "malformed_json":
            self._send(200, CUT_OFF_JSON, JSON_TYPE)
        elif fault.kind == "html":
            cloudfront = {"Server": "CloudFront", "X-Cache": "Error from cloudfront"}
            self._send(403, CLOUDFRONT_HTML, "text/html", {**headers, **cloudfront})
        else:
            error = _fault_error(fault)
            self._send_json(error.status, error.body, headers)
        return True

    def _reset_connection(self) -> None:
        """Closes with SO_LINGER 0 so the kernel sends RST instead of FIN.

        Detaching first releases the descriptor even though the handler's file objects still reference the socket.
        """
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        socket.close(self.connection.detach())
        self.close_connection = True

    def _send_json(self, status: int, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload, separators=(",", ":")).encode(), JSON_TYPE, headers)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: Mapping[str, str] | None = None,
        declared_length: int | None = None,
    ) -> None:
        """Writes one reply; `headers` may override Server, and `declared_length` may lie."""
        self.log_request(status)
        self.send_response_only(status)
        merged = {
            "Server": self.version_string(),
            "Date": self.date_time_string(),
            "Content-Type": content_type,
            "Content-Length": str(len(body) if declared_length is None else declared_length),
            "x-request-id": uuid.uuid4().hex,
            **(headers or {}),
        }
        for name, value in merged.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        if not self.path.startswith(CONTROL_PREFIX):
            self.server.state.record_status(status)
