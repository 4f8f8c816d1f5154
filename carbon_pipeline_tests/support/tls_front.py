"""HTTPS on loopback in front of the plain-HTTP fakes, for the tests that check certificates are verified."""

from __future__ import annotations

import selectors
import socket
import ssl
import threading
from types import TracebackType
from urllib.parse import urlsplit

import trustme

RELAY_TIMEOUT_SECONDS = 30.0
ACCEPT_POLL_SECONDS = 0.05


class TlsFront:
    """HTTPS on a free loopback port in front of a plain-HTTP loopback server, with a certificate from ``ca``.

    It terminates TLS and relays bytes, so the real simulator or InfluxDB shim answers behind it. A client
    that rejects the certificate aborts the handshake, so not one byte (credentials included) reaches
    the server behind.
    """

    def __init__(self, upstream_url: str, ca: trustme.CA) -> None:
        upstream = urlsplit(upstream_url)
        assert upstream.hostname is not None and upstream.port is not None
        self._upstream = (upstream.hostname, upstream.port)
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(self._context)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(ACCEPT_POLL_SECONDS)
        self._stop = threading.Event()
        self._connections: list[socket.socket] = []
        self._accepting = threading.Thread(target=self._accept_until_stopped, name="tls-front", daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> TlsFront:
        self._accepting.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stop.set()
        self._accepting.join()
        self._listener.close()
        for connection in self._connections:
            connection.close()

    def _accept_until_stopped(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            connection.settimeout(RELAY_TIMEOUT_SECONDS)
            self._connections.append(connection)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        try:
            secure = self._context.wrap_socket(connection, server_side=True)
        except (ssl.SSLError, OSError):
            return  # the client refused the certificate, as it should unless told otherwise
        with secure, socket.create_connection(self._upstream, timeout=RELAY_TIMEOUT_SECONDS) as plain:
            _relay(secure, plain)


def _relay(secure: ssl.SSLSocket, plain: socket.socket) -> None:
    """Copy bytes both ways until either side closes; decrypted bytes OpenSSL holds back count as readable."""
    peers: dict[socket.socket, socket.socket] = {secure: plain, plain: secure}
    with selectors.DefaultSelector() as selector:
        for sock in peers:
            selector.register(sock, selectors.EVENT_READ)
        while True:
            ready = [secure] if secure.pending() else [key.fileobj for key, _ in selector.select(RELAY_TIMEOUT_SECONDS)]
            if not ready:
                return
            for source in ready:
                assert isinstance(source, socket.socket)
                try:
                    data = source.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                peers[source].sendall(data)
