"""A disposable, real PostgreSQL server process for tests and benchmarks.

Deployments keep Dagster's runs, event logs and schedules in PostgreSQL (through
dagster-postgres), and SQLite behaves differently under concurrent writers, so
the tests run a real server: the distribution's PostgreSQL binaries from
``/usr/lib/postgresql/<version>/bin``. Everything the server owns (data
directory, unix socket, log) lives in one temporary directory, it only ever
listens on 127.0.0.1, and clients must authenticate with a random password, so
tests never touch a system installation or its clusters.

PostgreSQL refuses to run as root. When the tests run as root the server runs as
the unprivileged ``postgres`` system user that Debian's package creates, and the
temporary directory is handed over to that user.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import weakref
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import psycopg2
from psycopg2 import sql

from carbon_pipeline_tests.support.processes import LOOPBACK, ServerProcess, free_loopback_port, log_tail

_BINARIES_ROOT = Path("/usr/lib/postgresql")
_UNPRIVILEGED_USER = "postgres"
# Fast shutdown, then immediate shutdown, then SIGKILL. For postgres, SIGTERM is a *smart*
# shutdown that waits for every client to disconnect, which a connection pool never does.
# SIGINT is the fast shutdown: it disconnects clients and exits cleanly. SIGQUIT stops without
# a checkpoint, and SIGKILL is a last resort. The postmaster signals its backends itself.
_STOP_SIGNALS = ((signal.SIGINT, 10.0), (signal.SIGQUIT, 5.0))
_CONNECT_TIMEOUT_SECONDS = 2  # libpq's minimum; loopback refuses or answers in milliseconds
_MAINTENANCE_DATABASE = "postgres"
_SQLALCHEMY_SCHEME = "postgresql+psycopg2"

# Durability is worth nothing for a server whose data is deleted when it stops,
# so commits do not wait for the disk: a crash may lose or corrupt data here,
# which is fine for tests and never for a deployment.
_SERVER_SETTINGS = {
    "listen_addresses": LOOPBACK,
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "logging_collector": "off",
}


def find_binaries(root: Path = _BINARIES_ROOT) -> Path:
    """The ``bin`` directory of the newest PostgreSQL under ``root`` that has ``initdb`` and ``postgres``."""
    candidates = [
        entry / "bin"
        for entry in root.glob("*")
        if re.fullmatch(r"\d+(\.\d+)*", entry.name)
        and (entry / "bin" / "initdb").is_file()
        and (entry / "bin" / "postgres").is_file()
    ]
    if not candidates:
        raise FileNotFoundError(
            f"no PostgreSQL binaries under {root}/<version>/bin; install the 'postgresql' package (make postgresql)"
        )
    return max(candidates, key=lambda path: tuple(int(part) for part in path.parent.name.split(".")))


def _server_environment() -> dict[str, str]:
    """The caller's environment without PG* variables (libpq and initdb defaults) and with the C locale.

    The locale is fixed so initdb behaves the same on every machine, whatever
    locales happen to be installed.
    """
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PG", "LC_")) and key not in {"LANG", "LANGUAGE"}
    }
    environment["LC_ALL"] = "C"
    return environment


class PostgresServer:
    """One ``postgres`` process with its own temporary directory, loopback port and superuser.

    :meth:`start` runs ``initdb``, starts the server, waits until it accepts
    password-authenticated connections over TCP and creates :attr:`database`.
    :meth:`stop` shuts it down and deletes the temporary directory, so a server
    is used once. It is stopped by :meth:`stop` / the context manager, when the
    object is garbage collected, and at interpreter exit, so no ``postgres``
    outlives the test run.

    :attr:`password` is random per server and appears in :meth:`url` and
    :meth:`dagster_storage`, never in ``repr`` or error messages.
    """

    def __init__(
        self,
        user: str = "carbon",
        database: str = "carbon",
        binaries: Path | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self._binaries = binaries if binaries is not None else find_binaries()
        self._user = user
        self._database = database
        self._password = secrets.token_urlsafe(24)
        self._startup_timeout = startup_timeout
        self._run_as = pwd.getpwnam(_UNPRIVILEGED_USER) if os.geteuid() == 0 else None
        self._workdir = Path(tempfile.mkdtemp(prefix="carbon-postgres-"))
        # Registered before any process finalizer: finalizers run newest first
        # at exit, so the process is always gone before its directory.
        self._remove_workdir = weakref.finalize(self, shutil.rmtree, self._workdir, ignore_errors=True)
        if self._run_as is not None:
            os.chown(self._workdir, self._run_as.pw_uid, self._run_as.pw_gid)
        self._port = free_loopback_port()
        self._process: ServerProcess | None = None
        self._used = False

    def __repr__(self) -> str:
        return f"PostgresServer(postgresql://{self._user}@{LOOPBACK}:{self._port}/{self._database})"

    @property
    def host(self) -> str:
        """Always ``127.0.0.1``."""
        return LOOPBACK

    @property
    def port(self) -> int:
        """TCP port, chosen when the object is created."""
        return self._port

    @property
    def user(self) -> str:
        """Name of the superuser role that :attr:`password` authenticates."""
        return self._user

    @property
    def password(self) -> str:
        """Random password of :attr:`user`, different for every server."""
        return self._password

    @property
    def database(self) -> str:
        """Database created by :meth:`start`."""
        return self._database

    @property
    def workdir(self) -> Path:
        """Temporary directory holding the data directory, unix socket and log; removed by :meth:`stop`."""
        return self._workdir

    @property
    def log_path(self) -> Path:
        """File receiving the output of initdb and postgres."""
        return self._workdir / "postgres.log"

    def url(self, database: str | None = None) -> str:
        """``postgresql://user:password@127.0.0.1:port/database`` (default :attr:`database`), password included.

        A libpq connection URI (``psycopg2.connect(server.url())``). SQLAlchemy 2.1
        reads a bare ``postgresql://`` as psycopg 3, so give it
        ``url().replace("postgresql://", "postgresql+psycopg2://", 1)``.
        """
        userinfo = f"{quote(self._user, safe='')}:{quote(self._password, safe='')}"
        return f"postgresql://{userinfo}@{LOOPBACK}:{self._port}/{quote(database or self._database, safe='')}"

    def dagster_storage(self, database: str | None = None) -> dict[str, Any]:
        """The ``storage:`` block of a dagster.yaml keeping runs, event logs and schedules in ``database``.

        Defaults to :attr:`database`; the database must exist (see :meth:`create_database`).
        ``scheme`` names the driver because SQLAlchemy 2.1 maps a bare ``postgresql://``
        to psycopg 3, while dagster-postgres installs psycopg2.
        """
        return {
            "postgres": {
                "postgres_db": {
                    "hostname": LOOPBACK,
                    "port": self._port,
                    "username": self._user,
                    "password": self._password,
                    "db_name": database or self._database,
                    "scheme": _SQLALCHEMY_SCHEME,
                }
            }
        }

    def create_database(self, name: str) -> None:
        """Create an empty database owned by :attr:`user`."""
        connection = self._connect(_MAINTENANCE_DATABASE)
        try:
            connection.autocommit = True  # CREATE DATABASE cannot run inside a transaction
            with connection.cursor() as cursor:
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        finally:
            connection.close()

    def start(self) -> None:
        """Initialise the cluster, launch postgres, wait until it accepts connections, create :attr:`database`."""
        if self._used:
            raise RuntimeError(f"{self!r} was already started; a PostgresServer is used once")
        self._used = True
        try:
            self._initdb()
            self._launch()
            self.create_database(self._database)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Shut postgres down (fast shutdown, waited for) and delete the temporary directory."""
        if self._process is not None:
            self._process.stop()
            self._process = None
        self._remove_workdir()

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def _data_dir(self) -> Path:
        return self._workdir / "data"

    @property
    def _socket_dir(self) -> Path:
        return self._workdir / "socket"

    def _privilege_options(self) -> dict[str, Any]:
        """Popen options that drop root to the unprivileged user, including root's supplementary groups."""
        if self._run_as is None:
            return {}
        return {"user": self._run_as.pw_uid, "group": self._run_as.pw_gid, "extra_groups": []}

    def _write_private(self, path: Path, text: str) -> None:
        """Write a file only the server's user can read."""
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text)
        if self._run_as is not None:
            os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)

    def _make_private_dir(self, path: Path) -> None:
        path.mkdir(mode=0o700)
        if self._run_as is not None:
            os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)

    def _initdb(self) -> None:
        password_file = self._workdir / "password"
        self._write_private(password_file, self._password + "\n")
        self._make_private_dir(self._socket_dir)
        try:
            with self.log_path.open("ab") as log:
                completed = subprocess.run(
                    [
                        str(self._binaries / "initdb"),
                        "--pgdata",
                        str(self._data_dir),
                        "--username",
                        self._user,
                        "--pwfile",
                        str(password_file),
                        # Every connection, TCP or unix socket, must present the password.
                        "--auth",
                        "scram-sha-256",
                        "--encoding",
                        "UTF8",
                        "--no-locale",
                        "--no-sync",  # the cluster is thrown away, see _SERVER_SETTINGS
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=_server_environment(),
                    cwd=self._workdir,
                    check=False,
                    **self._privilege_options(),
                )
        finally:
            password_file.unlink(missing_ok=True)
        if completed.returncode != 0:
            raise RuntimeError(
                f"initdb exited with code {completed.returncode}; {self!r} in {self._workdir}; "
                f"log tail:\n{log_tail(self.log_path)}"
            )

    def _launch(self) -> None:
        settings = {
            **_SERVER_SETTINGS,
            "port": str(self._port),
            "unix_socket_directories": str(self._socket_dir),
        }
        command = [str(self._binaries / "postgres"), "-D", str(self._data_dir)]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        self._process = ServerProcess(
            "postgres",
            command,
            self.log_path,
            owner=self,
            stop_signals=_STOP_SIGNALS,
            signal_group=False,
            env=_server_environment(),
            cwd=self._workdir,
            **self._privilege_options(),
        )
        self._process.wait_until_ready(
            self._accepts_connections,
            self._startup_timeout,
            "accept connections",
            retry_on=(psycopg2.OperationalError,),
        )

    def _connect(self, database: str) -> Any:
        return psycopg2.connect(
            host=LOOPBACK,
            port=self._port,
            user=self._user,
            password=self._password,
            dbname=database,
            connect_timeout=_CONNECT_TIMEOUT_SECONDS,
            sslmode="disable",
        )

    def _accepts_connections(self) -> bool:
        """A password-authenticated connection over TCP succeeds, as every client will make."""
        self._connect(_MAINTENANCE_DATABASE).close()
        return True
