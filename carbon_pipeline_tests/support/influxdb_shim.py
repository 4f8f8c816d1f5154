"""An HTTP shim speaking the InfluxDB 3 and 2 write endpoints in front of InfluxDB 1.x.

The pipeline writes through the influxdb3-python client, which posts to
``/api/v3/write_lp`` or ``/api/v2/write``. Tests run a real InfluxDB 1.x
server, which only has ``/write``, so this shim maps one onto the other (the
same translation InfluxDB 1.8 does for its v2 API), checks the token the way
InfluxDB 3 does, records what the client sent, and can misbehave on demand so
error handling is tested against real sockets rather than mocks.

Mapping (the body is forwarded byte for byte, ``Content-Encoding: gzip`` included):

* ``POST /api/v3/write_lp?db=X&precision=P`` with P one of ``auto`` (default),
  ``nanosecond``, ``microsecond``, ``millisecond``, ``second`` or the aliases
  ``ns``/``n``, ``us``/``u``, ``ms``, ``s``. InfluxDB 1.x cannot guess a unit
  per timestamp, so ``auto`` is taken as nanoseconds (what InfluxDB 3 guesses
  for present-day nanosecond timestamps); send an explicit precision for
  anything else.
* ``POST /api/v2/write?bucket=X&precision=P`` with P ``ns`` (default), ``us``/``u``,
  ``ms`` or ``s``; ``bucket`` is the database name.
* Both go to ``POST {upstream}/write?db=X&precision=ns|u|ms|s``. ``org``,
  ``accept_partial`` and ``no_sync`` are accepted and ignored. The upstream
  status, body and content type are passed back unchanged. Unlike InfluxDB 3,
  the database is not created on first write: a missing one gives InfluxDB
  1.x's 404 ``database not found``.
* ``GET /query?db=X&q=...`` (InfluxQL, which InfluxDB 3 serves for v1 clients) is
  passed through to ``GET {upstream}/query`` once the token checks out; it is
  neither recorded nor subject to faults.
* The shim itself answers, like InfluxDB 3: 400 for a missing database
  parameter, an unknown precision, an undecodable body or an empty body; 401
  ``{"error": "the request was not authenticated"}`` for a missing or wrong
  token; 404 for any other path or method; and, once a limit is set with
  ``max_request_bytes`` or :meth:`InfluxDBShim.limit_request_size`, 413
  ``max request size (N bytes) exceeded`` for a body larger than N bytes after
  gzip decoding (InfluxDB 3's ``--max-http-request-size``, 10 MiB by default).
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import socket
import struct
import sys
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from types import TracebackType
from typing import Any, Literal, get_args
from urllib.parse import parse_qsl, urlencode, urlsplit

FaultKind = Literal["status", "delay", "reset", "partial_write", "lost_reply", "slow_reply"]

_LOOPBACK = "127.0.0.1"
_UPSTREAM_TIMEOUT_SECONDS = 30.0
_SHUTDOWN_POLL_SECONDS = 0.01  # how long stop() can wait for the serve loop to notice
_JSON = "application/json"
_TEXT = "text/plain; charset=utf-8"
_ACCEPTED_AUTH_SCHEMES = ("Token", "Bearer")
_QUERY_PATH = "/query"


@dataclass(frozen=True)
class RecordedWrite:
    """One write request as the shim received it, before any fault or forwarding.

    ``headers`` has lower-cased names; ``authorization`` keeps only its scheme
    (e.g. ``"Token"``) so tokens never end up in assertion messages or logs.
    ``body_size`` counts bytes on the wire (compressed when gzip), while
    ``line_count`` counts the non-blank lines of the decoded body. ``received_at`` is the
    ``time.monotonic()`` of its arrival, so tests can see how long a client waited between requests.
    """

    path: str
    params: dict[str, str]
    headers: dict[str, str]
    line_count: int
    body_size: int
    received_at: float


@dataclass
class _Fault:
    kind: FaultKind
    remaining: int
    status: int
    retry_after: str | None
    delay_seconds: float
    body: str | None
    line_number: int
    measurement: str | None = None

    def matches(self, lines: list[bytes]) -> bool:
        return self.measurement is None or lines[0].startswith(f"{self.measurement},".encode())


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of_json(cls, status: int, payload: object, headers: tuple[tuple[str, str], ...] = ()) -> _Reply:
        return cls(status, json.dumps(payload).encode(), _JSON, headers)


_UNAUTHENTICATED = _Reply.of_json(HTTPStatus.UNAUTHORIZED, {"error": "the request was not authenticated"})
_NOT_FOUND = _Reply(HTTPStatus.NOT_FOUND, b"404 page not found\n", _TEXT)
_EMPTY_WRITE = _Reply(HTTPStatus.BAD_REQUEST, b"incoming write was empty", _TEXT)
_UNDECODABLE = _Reply(HTTPStatus.BAD_REQUEST, b"unacceptable content-encoding or invalid gzip body", _TEXT)


@dataclass(frozen=True)
class _Endpoint:
    """How one InfluxDB 3 write endpoint names its database and precisions."""

    database_param: str
    precisions: Mapping[str, str]  # endpoint value -> InfluxDB 1.x value
    default_precision: str

    def upstream_query(self, params: Mapping[str, str]) -> dict[str, str]:
        """Translate the request's query string to InfluxDB 1.x ``/write`` parameters."""
        database = params.get(self.database_param)
        if not database:
            raise ValueError(f"missing query parameter '{self.database_param}'")
        precision = params.get("precision", self.default_precision)
        if precision not in self.precisions:
            raise ValueError(f"invalid precision {precision!r}, expected one of {sorted(self.precisions)}")
        return {"db": database, "precision": self.precisions[precision]}


_ENDPOINTS = {
    "/api/v3/write_lp": _Endpoint(
        database_param="db",
        precisions={
            "auto": "ns",
            "nanosecond": "ns",
            "ns": "ns",
            "n": "ns",
            "microsecond": "u",
            "us": "u",
            "u": "u",
            "millisecond": "ms",
            "ms": "ms",
            "second": "s",
            "s": "s",
        },
        default_precision="auto",
    ),
    "/api/v2/write": _Endpoint(
        database_param="bucket",
        precisions={"ns": "ns", "n": "ns", "us": "u", "u": "u", "ms": "ms", "s": "s"},
        default_precision="ns",
    ),
}


def _decode_body(body: bytes, content_encoding: str | None) -> bytes | None:
    """The body as line protocol, or None if it cannot be decoded (as InfluxDB 3 refuses it)."""
    if content_encoding == "gzip":
        try:
            return gzip.decompress(body)
        except (OSError, EOFError, zlib.error):
            return None
    return body if content_encoding in (None, "identity") else None


def _split_lines(body: bytes) -> list[bytes]:
    """Non-blank line-protocol lines of a decoded body."""
    return [line for line in body.split(b"\n") if line.strip()]


def _too_large_reply(max_bytes: int) -> _Reply:
    """InfluxDB 3's answer to a body over ``--max-http-request-size``: plain text, nothing written."""
    return _Reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"max request size ({max_bytes} bytes) exceeded".encode(), _TEXT)


def _redact_authorization(value: str) -> str:
    scheme, separator, _ = value.partition(" ")
    return scheme if separator else "<redacted>"


def _status_reply(fault: _Fault) -> _Reply:
    headers = (("Retry-After", fault.retry_after),) if fault.retry_after is not None else ()
    if fault.body is not None:
        return _Reply(fault.status, fault.body.encode(), _JSON, headers)
    return _Reply.of_json(fault.status, {"error": HTTPStatus(fault.status).phrase}, headers)


def _partial_write_reply(fault: _Fault, rejected_line: bytes) -> _Reply:
    if fault.body is not None:
        return _Reply(HTTPStatus.BAD_REQUEST, fault.body.encode(), _JSON)
    payload = {
        "error": "partial write of line protocol occurred",
        "data": [
            {
                "original_line": rejected_line.decode(errors="replace"),
                "line_number": fault.line_number,
                "error_message": "line rejected by injected partial_write fault",
            }
        ],
    }
    return _Reply.of_json(HTTPStatus.BAD_REQUEST, payload)


class _ShimRequestHandler(BaseHTTPRequestHandler):
    """Socket-level half of the shim: reads requests and writes (or withholds) replies."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the client's urllib3 pool expects
    server: _ShimHTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        self.server.untrack(self.connection)
        super().finish()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        reply = self.server.respond(self.command, self.path, self.headers, body)
        if reply is None:
            self._reset_connection()
        else:
            self._send(reply)

    do_GET = do_PUT = do_PATCH = do_DELETE = do_POST

    def _send(self, reply: _Reply) -> None:
        self.send_response(reply.status)
        if reply.content_type is not None:
            self.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers:
            self.send_header(name, value)
        if reply.status != HTTPStatus.NO_CONTENT:
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if reply.status != HTTPStatus.NO_CONTENT:
            self.wfile.write(reply.body)

    def _reset_connection(self) -> None:
        """Drop the connection with a TCP RST and no reply: SO_LINGER 0 turns close() into a reset."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        """Stay silent: per-request logs are noise in test output."""


_Responder = Callable[[str, str, Message, bytes], _Reply | None]


class _ShimHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that can cut its open keep-alive connections, to emulate a server going away."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], respond: _Responder) -> None:
        self.respond = respond
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _ShimRequestHandler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup of the address (slow on offline machines)."""
        TCPServer.server_bind(self)
        host, self.server_port = self.server_address[:2]
        self.server_name = str(host)

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """Shut down every open client connection so pooled keep-alive connections die too."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by its handler
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that hang up (timeouts, cut connections); report anything else."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class InfluxDBShim:
    """InfluxDB 3 / 2 write API on a free 127.0.0.1 port, forwarding to InfluxDB 1.x at ``upstream_url``.

    With ``token`` set, requests need ``Authorization: Token <token>`` or
    ``Bearer <token>``. Faults queued with :meth:`inject` apply to the next
    authenticated, well-formed write requests in order. The Authorization
    header is never printed, logged or recorded.
    """

    def __init__(self, upstream_url: str, token: str | None = None, *, max_request_bytes: int | None = None) -> None:
        upstream = urlsplit(upstream_url)
        if upstream.scheme != "http" or upstream.hostname is None or upstream.port is None:
            raise ValueError(f"upstream_url must look like http://host:port, got {upstream_url!r}")
        self._upstream_address = (upstream.hostname, upstream.port)
        self._token = token
        self._max_request_bytes = _checked_limit(max_request_bytes)
        self._state_lock = threading.Lock()
        self._requests: list[RecordedWrite] = []
        self._faults: deque[_Fault] = deque()
        self._port: int | None = None
        self._httpd: _ShimHTTPServer | None = None
        self._serve_thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL to give the client as ``host``, e.g. ``http://127.0.0.1:40123``."""
        if self._port is None:
            raise RuntimeError("the shim has no port until start() is called")
        return f"http://{_LOOPBACK}:{self._port}"

    @property
    def token(self) -> str | None:
        """The token clients must send, or None when any request is accepted."""
        return self._token

    @property
    def requests(self) -> list[RecordedWrite]:
        """Snapshot of the write requests received so far, oldest first."""
        with self._state_lock:
            return list(self._requests)

    def reset(self) -> None:
        """Forget recorded requests and drop faults not yet triggered."""
        with self._state_lock:
            self._requests.clear()
            self._faults.clear()

    def start(self) -> InfluxDBShim:
        """Listen (on the previous port if there was one) and serve in a background thread."""
        if self._httpd is not None:
            raise RuntimeError(f"the shim is already listening at {self.url}")
        httpd = _ShimHTTPServer((_LOOPBACK, self._port or 0), self._handle)
        self._port = httpd.server_address[1]
        self._serve_thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": _SHUTDOWN_POLL_SECONDS},
            name=f"influxdb-shim-{self._port}",
            daemon=True,
        )
        self._httpd = httpd
        self._serve_thread.start()
        return self

    def stop(self) -> None:
        """Close the listening socket and every open connection. Safe to call twice."""
        if self._httpd is None or self._serve_thread is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd.close_connections()
        self._serve_thread.join()
        self._httpd = self._serve_thread = None

    def limit_request_size(self, max_bytes: int | None) -> None:
        """Answer 413 to write bodies over ``max_bytes`` (after gzip decoding), like a smaller
        ``--max-http-request-size``; None lifts the limit. Applies to requests from now on."""
        with self._state_lock:
            self._max_request_bytes = _checked_limit(max_bytes)

    def refuse_connections(self) -> None:
        """Make connects fail with ECONNREFUSED, like an InfluxDB that is down; the port number is kept."""
        self.stop()

    def accept_connections(self) -> None:
        """Listen again on the same port after :meth:`refuse_connections`."""
        if self._port is None:
            raise RuntimeError("accept_connections() needs a shim that was started before")
        self.start()

    def __enter__(self) -> InfluxDBShim:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def inject(
        self,
        kind: FaultKind,
        count: int = 1,
        *,
        status: int = HTTPStatus.SERVICE_UNAVAILABLE,
        retry_after: int | str | None = None,
        delay_seconds: float = 1.0,
        body: str | None = None,
        line_number: int = 2,
        measurement: str | None = None,
    ) -> None:
        """Queue a fault for the next ``count`` write requests (after faults queued earlier); with
        ``measurement``, only for requests whose first line is of that measurement.

        * ``"status"``: answer ``status`` with ``body`` (default ``{"error": "<reason>"}``)
          and ``Retry-After: retry_after`` if given; nothing is forwarded.
        * ``"delay"``: sleep ``delay_seconds``, then forward normally.
        * ``"reset"``: close the connection with a TCP reset and no reply; nothing is forwarded.
        * ``"partial_write"``: forward every line except line ``line_number`` (1-based,
          non-blank lines), then answer 400 with InfluxDB 3's partial-write body
          (or ``body``). An upstream error is passed back instead; a request
          shorter than ``line_number`` lines is forwarded whole.
        * ``"lost_reply"``: forward the write, then close the connection with a TCP
          reset instead of answering: the points are stored but the client never
          learns it, as when a server or proxy dies between committing and replying.
        * ``"slow_reply"``: forward the write, then sleep ``delay_seconds`` before answering:
          the points are stored while the writer still waits for the reply.
        """
        if kind not in get_args(FaultKind):
            raise ValueError(f"unknown fault kind {kind!r}, expected one of {get_args(FaultKind)}")
        if count < 1 or line_number < 1:
            raise ValueError("count and line_number must be at least 1")
        fault = _Fault(
            kind=kind,
            remaining=count,
            status=HTTPStatus(status),
            retry_after=None if retry_after is None else str(retry_after),
            delay_seconds=delay_seconds,
            body=body,
            line_number=line_number,
            measurement=measurement,
        )
        with self._state_lock:
            self._faults.append(fault)

    def _handle(self, method: str, target: str, headers: Message, body: bytes) -> _Reply | None:
        """Answer one request; None means: reset the connection without a reply."""
        received_at = time.monotonic()
        url = urlsplit(target)
        if method == "GET" and url.path == _QUERY_PATH:
            return self._query(url.query) if self._authenticated(headers) else _UNAUTHENTICATED
        endpoint = _ENDPOINTS.get(url.path) if method == "POST" else None
        if endpoint is None:
            return _NOT_FOUND if self._authenticated(headers) else _UNAUTHENTICATED
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        decoded = _decode_body(body, headers.get("Content-Encoding"))
        lines = [] if decoded is None else _split_lines(decoded)
        self._record(RecordedWrite(url.path, params, self._redacted(headers), len(lines), len(body), received_at))
        if not self._authenticated(headers):
            return _UNAUTHENTICATED
        try:
            query = endpoint.upstream_query(params)
        except ValueError as error:
            return _Reply.of_json(HTTPStatus.BAD_REQUEST, {"error": str(error)})
        if decoded is None:
            return _UNDECODABLE
        limit = self._request_limit()
        if limit is not None and len(decoded) > limit:
            return _too_large_reply(limit)
        if not lines:
            return _EMPTY_WRITE
        return self._write(query, headers, body, lines)

    def _write(self, query: dict[str, str], headers: Message, body: bytes, lines: list[bytes]) -> _Reply | None:
        """Forward a validated write, unless the next queued fault says otherwise."""
        content_type = headers.get("Content-Type", _TEXT)
        fault = self._take_fault(lines)
        if fault is None:
            return self._forward(query, body, content_type, headers.get("Content-Encoding"))
        match fault.kind:
            case "status":
                return _status_reply(fault)
            case "reset":
                return None
            case "delay":
                time.sleep(fault.delay_seconds)
                return self._forward(query, body, content_type, headers.get("Content-Encoding"))
            case "partial_write":
                return self._partial_write(fault, query, content_type, lines)
            case "lost_reply":
                self._forward(query, body, content_type, headers.get("Content-Encoding"))
                return None
            case "slow_reply":
                reply = self._forward(query, body, content_type, headers.get("Content-Encoding"))
                time.sleep(fault.delay_seconds)
                return reply

    def _partial_write(self, fault: _Fault, query: dict[str, str], content_type: str, lines: list[bytes]) -> _Reply:
        index = fault.line_number - 1
        kept = lines[:index] + lines[index + 1 :]
        upstream = self._forward(query, b"\n".join(kept), content_type, None)
        if index >= len(lines) or upstream.status >= HTTPStatus.MULTIPLE_CHOICES:
            return upstream
        return _partial_write_reply(fault, lines[index])

    def _query(self, query_string: str) -> _Reply:
        """A read, passed through as it came: InfluxDB 3 serves the same v1 ``/query`` as 1.x."""
        return self._upstream("GET", f"{_QUERY_PATH}?{query_string}", None, {})

    def _forward(self, query: dict[str, str], body: bytes, content_type: str, content_encoding: str | None) -> _Reply:
        headers = {"Content-Type": content_type}
        if content_encoding is not None:
            headers["Content-Encoding"] = content_encoding
        return self._upstream("POST", f"/write?{urlencode(query)}", body, headers)

    def _upstream(self, method: str, target: str, body: bytes | None, headers: dict[str, str]) -> _Reply:
        connection = http.client.HTTPConnection(*self._upstream_address, timeout=_UPSTREAM_TIMEOUT_SECONDS)
        try:
            connection.request(method, target, body=body, headers=headers)
            response = connection.getresponse()
            return _Reply(response.status, response.read(), response.getheader("Content-Type"))
        except OSError as error:
            return _Reply.of_json(HTTPStatus.BAD_GATEWAY, {"error": f"upstream InfluxDB unreachable: {error}"})
        finally:
            connection.close()

    def _authenticated(self, headers: Message) -> bool:
        if self._token is None:
            return True
        scheme, _, credential = (headers.get("Authorization") or "").partition(" ")
        return scheme in _ACCEPTED_AUTH_SCHEMES and credential == self._token

    @staticmethod
    def _redacted(headers: Message) -> dict[str, str]:
        recorded = {name.lower(): value for name, value in headers.items()}
        if "authorization" in recorded:
            recorded["authorization"] = _redact_authorization(recorded["authorization"])
        return recorded

    def _record(self, write: RecordedWrite) -> None:
        with self._state_lock:
            self._requests.append(write)

    def _request_limit(self) -> int | None:
        with self._state_lock:
            return self._max_request_bytes

    def _take_fault(self, lines: list[bytes]) -> _Fault | None:
        with self._state_lock:
            fault = next((fault for fault in self._faults if fault.matches(lines)), None)
            if fault is None:
                return None
            fault.remaining -= 1
            if fault.remaining == 0:
                self._faults.remove(fault)
            return fault


def _checked_limit(max_bytes: int | None) -> int | None:
    """Refuse a zero or negative limit early: it would silently reject every write."""
    if max_bytes is not None and max_bytes < 1:
        raise ValueError("max_request_bytes must be at least 1 (or None for no limit)")
    return max_bytes
