"""Processes the tests start reach loopback and nothing else (support/loopback_guard.py).

192.0.2.1 and 2001:db8::1 are documentation addresses (TEST-NET-1, RFC 5737; RFC 3849). In the guard's
namespace there is no route to them, so the kernel answers ENETUNREACH at once; anywhere else the attempt
is made and ends otherwise (refused, timed out, unreachable host, or connected).
"""

from __future__ import annotations

import errno
import json
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

BEYOND_LOOPBACK = (("192.0.2.1", 80), ("2001:db8::1", 80))
CONNECT_TIMEOUT_SECONDS = 5
CHILD_TIMEOUT_SECONDS = 60
GREETING = "hello from the child"

# argv: the addresses beyond loopback (JSON), the loopback port, the connect timeout, what to send there.
PYTHON_CHILD = textwrap.dedent(
    """
    import errno, json, socket, sys

    beyond_loopback, timeout = json.loads(sys.argv[1]), float(sys.argv[3])
    port, greeting = int(sys.argv[2]), sys.argv[4]

    def attempt(host, port):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as connection:
            connection.settimeout(timeout)
            try:
                connection.connect((host, port))
            except OSError as error:
                return errno.errorcode.get(error.errno, repr(error))
            return "connected"

    beyond = {host: attempt(host, port) for host, port in beyond_loopback}
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as loopback:
        loopback.sendall(greeting.encode())
    print(json.dumps({"interfaces": [name for _, name in socket.if_nameindex()], "beyond": beyond}))
    """
)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP server on loopback in the pytest process; a child's connection waits in its backlog."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(CHILD_TIMEOUT_SECONDS)
        yield server


def received(server: socket.socket) -> str:
    connection, _ = server.accept()
    with connection:
        connection.settimeout(CHILD_TIMEOUT_SECONDS)
        return connection.recv(len(GREETING)).decode()


def test_a_python_child_is_refused_every_address_beyond_loopback_and_reaches_loopback(
    listener: socket.socket,
) -> None:
    arguments = [json.dumps(BEYOND_LOOPBACK), str(listener.getsockname()[1]), str(CONNECT_TIMEOUT_SECONDS), GREETING]
    child = subprocess.run(
        [sys.executable, "-c", PYTHON_CHILD, *arguments],
        capture_output=True, text=True, timeout=CHILD_TIMEOUT_SECONDS, check=True,
    )  # fmt: skip
    seen = json.loads(child.stdout)
    assert seen["interfaces"] == ["lo"]
    assert seen["beyond"] == {host: errno.errorcode[errno.ENETUNREACH] for host, _ in BEYOND_LOOPBACK}
    assert received(listener) == GREETING


@pytest.mark.parametrize(("host", "port"), BEYOND_LOOPBACK)
def test_a_shell_child_is_refused_an_address_beyond_loopback(host: str, port: int) -> None:
    """bash's /dev/tcp connects with the C library, no Python in the way."""
    child = subprocess.run(
        ["timeout", str(CONNECT_TIMEOUT_SECONDS), "bash", "-c", f"exec 3<>/dev/tcp/{host}/{port}"],
        capture_output=True, text=True, timeout=CHILD_TIMEOUT_SECONDS, check=False,
    )  # fmt: skip
    assert child.returncode == 1, child
    assert "Network is unreachable" in child.stderr


def test_a_shell_child_reaches_loopback(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    subprocess.run(
        ["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port} && printf '%s' '{GREETING}' >&3"],
        timeout=CHILD_TIMEOUT_SECONDS, check=True,
    )  # fmt: skip
    assert received(listener) == GREETING


def test_pip_in_a_child_has_no_index(tmp_path: Path) -> None:
    """Whatever a test installs comes from local files; pip never looks for an index."""
    child = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--dest", str(tmp_path), "carbon-pipeline-absent"],
        capture_output=True, text=True, timeout=CHILD_TIMEOUT_SECONDS, check=False,
    )  # fmt: skip
    output = child.stdout + child.stderr
    assert "No matching distribution found for carbon-pipeline-absent" in output
    assert "Looking in indexes" not in output
