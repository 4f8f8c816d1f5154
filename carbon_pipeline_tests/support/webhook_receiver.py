"""A chat-webhook stand-in on loopback that records every JSON POST it receives, and can refuse them."""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


class WebhookReceiver:
    """Records posted payloads in order; ``refuse(status, count)`` answers the next ``count`` posts with ``status``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._payloads: list[dict[str, Any]] = []
        self._attempts = 0
        self._refusals: list[int] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hooks/alerts"

    @property
    def payloads(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._payloads)

    @property
    def attempts(self) -> int:
        with self._lock:
            return self._attempts

    def texts(self) -> list[str]:
        return [payload["text"] for payload in self.payloads]

    def titles(self) -> list[str]:
        """The first line of each alert received: what happened, to what and where."""
        return [text.splitlines()[0] for text in self.texts()]

    def refuse(self, status: int, count: int) -> None:
        with self._lock:
            self._refusals.extend([status] * count)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _receive(self, body: bytes) -> int:
        with self._lock:
            self._attempts += 1
            if self._refusals:
                return self._refusals.pop(0)
            self._payloads.append(json.loads(body))
            return HTTPStatus.OK

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = receiver._receive(body)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test asserts on the recorded payloads instead."""

        return Handler
