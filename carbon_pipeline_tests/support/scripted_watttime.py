"""A WattTime stand-in that answers each data request with the next scripted reply.

For the reply shapes the simulator cannot produce (HTTP-date Retry-After, missing meta, broken forecast
documents, a known token): /login always succeeds with `SCRIPTED_TOKEN`.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

SCRIPTED_TOKEN = "tok-0f9e8d7c6b5a-never-log-me"
LOOPBACK = "127.0.0.1"
ScriptedReply = tuple[int, dict[str, str], Any]  # status, extra headers, JSON-able body


class ScriptedServer(ThreadingHTTPServer):
    """Answers /login with a fixed token and every other GET with the next scripted reply."""

    daemon_threads = True

    def __init__(self, replies: list[ScriptedReply]) -> None:
        super().__init__((LOOPBACK, 0), _ScriptedHandler)
        self.replies = deque(replies)
        self.served = 0

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.server_port}"


class _ScriptedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ScriptedServer

    def do_GET(self) -> None:
        self.server.served += 1
        status, headers, body = (
            (200, {}, {"token": SCRIPTED_TOKEN})
            if urlsplit(self.path).path == "/login"
            else self.server.replies.popleft()
        )
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        for name, value in {
            "Content-Length": str(len(raw)),
            "x-request-id": f"req-{self.server.served}",
            **headers,
        }.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log."""


@contextmanager
def scripted_server(*replies: ScriptedReply) -> Iterator[ScriptedServer]:
    server = ScriptedServer(list(replies))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
