"""No test, and no process a test starts, reaches beyond loopback: pytest runs in a network namespace of
its own, which holds the loopback interface and nothing else.

pytest-socket (``--allow-hosts`` in pyproject.toml) refuses only the connections the pytest process makes
itself. The processes tests start (the ``carbon-pipeline`` CLI, ``dagster dev`` and its code servers and
run workers, ``make demo``, Chromium, pip) are out of its reach, so the kernel guards them: this plugin,
loaded by ``-p`` in pyproject.toml's addopts, is imported before pytest captures output or loads any other
plugin, and re-executes the same command line under ``unshare --net``. In the new namespace the only
interface is ``lo`` and there is no route anywhere else, so a connect() to any other address fails at once
with ENETUNREACH, whichever program makes it. The process tree keeps loopback (brought up here), unix
sockets and the filesystem.

Not as root, ``unshare --map-root-user`` grants the right to bring ``lo`` up inside, and a second user
namespace then maps the user back to its own uid, so servers that refuse root (PostgreSQL) start as they
do outside. Inside, pip is told there is no index (``PIP_NO_INDEX``): a test installs from local files only.

When the namespace cannot be made (no ``unshare``, user namespaces disabled), pytest stops with an error
saying so: it never runs unguarded.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import struct
import subprocess
import sys
from pathlib import Path

LOOPBACK = "lo"
# Set on the way into the namespace: the uid to map back to, and proof the re-execution happened.
REEXECUTED = "PYTEST_LOOPBACK_ONLY_UID"
# ioctl requests of <linux/sockios.h> and the flag of <net/if.h>.
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_IFREQ = "16sH"


class LoopbackGuardError(SystemExit):
    """pytest cannot run in a loopback-only network namespace; the message says why and what to do."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"carbon-pipeline tests: {reason}. The suite never runs with access beyond loopback.")


def interface_names() -> list[str]:
    """The network interfaces of this process's namespace."""
    return sorted(name for _, name in socket.if_nameindex())


def only_loopback() -> bool:
    return interface_names() == [LOOPBACK]


def bring_up_loopback() -> None:
    """``ip link set lo up``, without needing iproute2: a new namespace's ``lo`` starts down."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as control:
        request = struct.pack(_IFREQ, LOOPBACK.encode(), 0)
        flags = struct.unpack(_IFREQ, fcntl.ioctl(control, _SIOCGIFFLAGS, request)[: struct.calcsize(_IFREQ)])[1]
        if flags & _IFF_UP:
            return
        try:
            fcntl.ioctl(control, _SIOCSIFFLAGS, struct.pack(_IFREQ, LOOPBACK.encode(), flags | _IFF_UP))
        except PermissionError as error:
            raise LoopbackGuardError(f"cannot bring {LOOPBACK} up in the new network namespace: {error}") from None


def this_command_line() -> list[str]:
    """This interpreter's own command line (``.venv/bin/pytest ...`` or ``python -m pytest ...``), to start again."""
    started = Path(sys.argv[0])
    if started.name not in ("pytest", "py.test") and started.parts[-2:] != ("pytest", "__main__.py"):
        raise LoopbackGuardError(
            f"pytest was started from {sys.argv[0]!r}, not from its command line, so it cannot re-execute itself "
            "in a loopback-only network namespace; run `pytest` or `python -m pytest`"
        )
    return [sys.executable, *sys.orig_argv[1:]]


def namespace_command(uid: int) -> list[str]:
    """``unshare`` into a new network namespace; not as root, in a user namespace that may configure it."""
    unshare = shutil.which("unshare")
    if unshare is None:
        raise LoopbackGuardError("`unshare` (util-linux) is not installed, so no loopback-only network namespace")
    return [unshare, "--net", "--"] if uid == 0 else [unshare, "--net", "--map-root-user", "--"]


def back_to_user_command(uid: int, gid: int) -> list[str]:
    """A user namespace inside, mapping root of the outer one back to ``uid`` and ``gid``."""
    return ["unshare", "--user", f"--map-user={uid}", f"--map-group={gid}", "--"]


def check_namespaces_work(uid: int, gid: int) -> None:
    probe = namespace_command(uid) + ([] if uid == 0 else back_to_user_command(uid, gid)) + ["true"]
    result = subprocess.run(probe, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise LoopbackGuardError(
            f"no loopback-only network namespace: `{' '.join(probe)}` failed: {result.stderr.strip()}"
        )


def enter_loopback_only_namespace() -> None:
    """Re-execute pytest inside the namespace, or, inside, bring up ``lo`` and go on."""
    if only_loopback():
        target_uid = int(os.environ.get(REEXECUTED, os.getuid()))
        if os.getuid() != target_uid:  # root of the first user namespace: configure it, then become the user again
            bring_up_loopback()
            gid = int(os.environ[f"{REEXECUTED}_GID"])
            os.execvp("unshare", back_to_user_command(target_uid, gid) + this_command_line())
        bring_up_loopback()
        os.environ["PIP_NO_INDEX"] = "1"
        return
    if REEXECUTED in os.environ:
        raise LoopbackGuardError(
            f"re-executed under unshare, yet the network namespace holds {interface_names()}, not only {LOOPBACK}"
        )
    uid, gid = os.getuid(), os.getgid()
    check_namespaces_work(uid, gid)
    os.environ[REEXECUTED], os.environ[f"{REEXECUTED}_GID"] = str(uid), str(gid)
    command = namespace_command(uid) + this_command_line()
    os.execv(command[0], command)


enter_loopback_only_namespace()
