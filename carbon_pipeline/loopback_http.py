"""What every simulated outside API shares: a threaded loopback server, a reply writer, a serving thread.

Built on `http.server` rather than an ASGI framework because faults such as connection resets and truncated
bodies need direct control of the socket. Each simulator adds its own routes, state and faults on top.
"""

from __future__ import annotations

import json
import logging
import socket
import struct
import threading
import uuid
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

logger = logging.getLogger(__name__)

JSON_TYPE = "application/json"
CONTROL_PREFIX = "/_simulator/"
SHUTDOWN_POLL_SECONDS = 0.05
"""How often the serving loop checks for `stop()`; the library default of 0.5 s makes every stop slow."""


class RecordsStatuses(Protocol):
    def record_status(self, status: int) -> None: ...


State = TypeVar("State", bound=RecordsStatuses)


class ApiError(Exception):
    """An error reply; raising it keeps a simulator's endpoints free of reply plumbing."""

    def __init__(self, status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


class StatefulHTTPServer(ThreadingHTTPServer, Generic[State]):
    """Threaded server carrying the simulator's state; client disconnects are routine, so errors log at DEBUG."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], state: State) -> None:
        super().__init__(address, handler)
        self.state = state

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("Connection from %s ended with an error", client_address, exc_info=True)


class ReplyHandler(BaseHTTPRequestHandler):
    """Writes replies byte for byte as told, so a simulator can also send the broken ones real servers send.

    Every GET, POST and DELETE goes to `dispatch(method)`. Each API reply's status (not the `/_simulator/`
    control surface's) is recorded in the state before the client can read it, so a client that asks for
    the counts right after a reply sees it counted.
    """

    server: StatefulHTTPServer[Any]

    protocol_version = "HTTP/1.1"
    timeout = 30  # seconds before an idle keep-alive connection is dropped
    disable_nagle_algorithm = True  # headers and body go out in separate writes; Nagle would stall the body ~40 ms

    def log_message(self, format: str, *args: Any) -> None:
        """Each simulator's requests log under its own module's logger, at DEBUG."""
        logging.getLogger(type(self).__module__).debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self.dispatch("GET")

    def do_POST(self) -> None:
        self.dispatch("POST")

    def do_DELETE(self) -> None:
        self.dispatch("DELETE")

    def dispatch(self, method: str) -> None:
        """Serve one request; each simulator routes its own."""
        raise NotImplementedError

    def reset_connection(self) -> None:
        """Closes with SO_LINGER 0 so the kernel sends RST instead of FIN.

        Detaching first releases the descriptor even though the handler's file objects still reference the socket.
        """
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        socket.close(self.connection.detach())
        self.close_connection = True

    def send_json(self, status: int, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> None:
        self.send(status, json.dumps(payload, separators=(",", ":")).encode(), JSON_TYPE, headers)

    def send(
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
        if not self.path.startswith(CONTROL_PREFIX):
            self.server.state.record_status(status)
        self.end_headers()
        self.wfile.write(body)


class ServingThread(Generic[State]):
    """A simulator in a daemon thread; port 0 picks a free ephemeral port, read back from `base_url`."""

    def __init__(
        self,
        state: State,
        make_server: Callable[[tuple[str, int], State], StatefulHTTPServer[State]],
        name: str,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.state = state
        self._make_server = make_server
        self._name = name
        self._address = (host, port)
        self._httpd: StatefulHTTPServer[State] | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the simulator is not running")
        return f"http://{self._address[0]}:{self._httpd.server_port}"

    def start(self) -> Self:
        if self._httpd is not None:
            raise RuntimeError("the simulator is already running")
        self._httpd = self._make_server(self._address, self.state)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS},
            name=self._name,
            daemon=True,
        )
        self._thread.start()
        logger.info("%s listening on %s", self._name, self.base_url)
        return self

    def stop(self) -> None:
        if self._httpd is None or self._thread is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()
        self._httpd = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
