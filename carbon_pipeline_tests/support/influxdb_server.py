"""A disposable, real InfluxDB 1.x server process for integration tests.

No InfluxDB 3 server can be installed on the test machines, so the tests run the
distribution's ``influxd`` (1.6+) and put :class:`~carbon_pipeline_tests.support.influxdb_shim.InfluxDBShim`
in front of it to speak the InfluxDB 3 write endpoints. Everything the server
owns (config, data, meta, WAL, log) lives in one temporary directory, and it
only ever listens on 127.0.0.1, so tests never touch a system installation.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import tempfile
import weakref
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

from carbon_pipeline_tests.support.processes import LOOPBACK, ServerProcess, free_loopback_port

_HTTP_TIMEOUT_SECONDS = 30.0
_PING_TIMEOUT_SECONDS = 0.25  # loopback answers in milliseconds; a port held by someone else never does

# Written by hand rather than taken from `influxd config`, whose output is
# merged with /etc/influxdb/influxdb.conf and would differ between machines.
# Every background service is off so tests see only the data they wrote and
# the server does nothing between requests.
_CONFIG_TEMPLATE = """\
reporting-enabled = false
bind-address = "{loopback}:{rpc_port}"

[meta]
  dir = "{workdir}/meta"
  retention-autocreate = true
  logging-enabled = false

[data]
  dir = "{workdir}/data"
  wal-dir = "{workdir}/wal"
  wal-fsync-delay = "0s"
  index-version = "inmem"
  query-log-enabled = false

[retention]
  enabled = false

[shard-precreation]
  enabled = false

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[http]
  enabled = true
  bind-address = "{loopback}:{http_port}"
  auth-enabled = false
  log-enabled = false
  pprof-enabled = false

[ifql]
  enabled = false

[logging]
  level = "warn"
  suppress-logo = true

[continuous_queries]
  enabled = false

[[graphite]]
  enabled = false

[[collectd]]
  enabled = false

[[opentsdb]]
  enabled = false

[[udp]]
  enabled = false
"""


class InfluxQLError(RuntimeError):
    """An InfluxQL statement was rejected by the server."""


def quote_identifier(name: str) -> str:
    """Quote an InfluxQL identifier so any database name is safe in a statement."""
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _influxd_environment() -> dict[str, str]:
    """The caller's environment minus INFLUXDB_* variables, which influxd applies over its config file."""
    return {key: value for key, value in os.environ.items() if not key.startswith("INFLUXDB_")}


class InfluxDBServer:
    """One ``influxd`` process with its own temporary directory and loopback ports.

    The HTTP port is chosen once, so :meth:`restart` comes back at the same
    :attr:`url` with the same data. The process is stopped by :meth:`stop`, by
    :meth:`close` / the context manager, when the object is garbage collected,
    and at interpreter exit, so no ``influxd`` outlives the test run.

    :meth:`query` returns times as integer epoch **seconds** (InfluxDB's
    ``epoch=s``; sub-second parts are truncated), which is what carbon-intensity
    data uses and compares exactly.
    """

    def __init__(self, executable: str = "influxd", startup_timeout: float = 30.0) -> None:
        resolved = shutil.which(executable)
        if resolved is None:
            raise FileNotFoundError(f"{executable!r} not found on PATH; install the 'influxdb' package")
        self._executable = resolved
        self._startup_timeout = startup_timeout
        self._workdir = Path(tempfile.mkdtemp(prefix="carbon-influxdb-"))
        # Registered before any process finalizer: finalizers run newest first
        # at exit, so the process is always gone before its directory.
        self._remove_workdir = weakref.finalize(self, shutil.rmtree, self._workdir, ignore_errors=True)
        self._http_port = free_loopback_port()
        self._config_path = self._workdir / "influxdb.conf"
        self._config_path.write_text(
            _CONFIG_TEMPLATE.format(
                loopback=LOOPBACK,
                workdir=self._workdir,
                http_port=self._http_port,
                rpc_port=free_loopback_port(),
            )
        )
        self._process: ServerProcess | None = None

    @property
    def url(self) -> str:
        """Base URL of the HTTP API, e.g. ``http://127.0.0.1:40123``."""
        return f"http://{LOOPBACK}:{self._http_port}"

    @property
    def log_path(self) -> Path:
        """File receiving influxd's stdout and stderr across all (re)starts."""
        return self._workdir / "influxd.log"

    def start(self) -> None:
        """Launch influxd and block until ``/ping`` answers 204."""
        if self._process is not None:
            raise RuntimeError(f"influxd was already started at {self.url}; stop() it first")
        self._process = ServerProcess(
            "influxd",
            [self._executable, "run", "-config", str(self._config_path)],
            self.log_path,
            owner=self,
            env=_influxd_environment(),
        )
        try:
            self._process.wait_until_ready(self._ping, self._startup_timeout, f"answer /ping at {self.url}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """SIGTERM influxd, which closes its shards and WAL cleanly, and wait for it (SIGKILL after 10 s).

        Data is kept for a restart."""
        if self._process is not None:
            self._process.stop()
            self._process = None

    def restart(self) -> None:
        """Stop and start again on the same port with the same data directory."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and delete its temporary directory."""
        self.stop()
        self._remove_workdir()

    def __enter__(self) -> InfluxDBServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def create_database(self, name: str) -> None:
        """Create a database (InfluxDB 1.x does not create one on first write)."""
        self._execute(f"CREATE DATABASE {quote_identifier(name)}")

    def drop_database(self, name: str) -> None:
        """Drop a database and all its data; dropping a missing one is not an error."""
        self._execute(f"DROP DATABASE {quote_identifier(name)}")

    def query(self, influxql: str, database: str) -> list[dict[str, Any]]:
        """Run InfluxQL and return one dict per row, column name -> value.

        ``time`` is an int of epoch seconds. Tags are included as columns: for
        ``SELECT *`` InfluxDB returns them as columns already, and for
        ``GROUP BY`` queries the series' tags are merged into each row. Rows of
        several statements or series are concatenated in server order.
        """
        return self._execute(influxql, db=database, epoch="s")

    def _execute(self, influxql: str, **params: str) -> list[dict[str, Any]]:
        status, body = self._post_query(influxql, params)
        if status != 200:
            raise InfluxQLError(f"{influxql!r} failed with HTTP {status}: {body.decode(errors='replace')}")
        rows: list[dict[str, Any]] = []
        for result in json.loads(body)["results"]:
            if "error" in result:
                raise InfluxQLError(f"{influxql!r} failed: {result['error']}")
            for series in result.get("series", []):
                tags = series.get("tags", {})
                rows.extend(
                    {**tags, **dict(zip(series["columns"], values, strict=True))} for values in series["values"]
                )
        return rows

    def _post_query(self, influxql: str, params: dict[str, str]) -> tuple[int, bytes]:
        """POST to /query: POST is required for CREATE/DROP, and a form body has no URL length limit."""
        connection = http.client.HTTPConnection(LOOPBACK, self._http_port, timeout=_HTTP_TIMEOUT_SECONDS)
        try:
            connection.request(
                "POST",
                "/query",
                body=urlencode({"q": influxql, **params}),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def _ping(self) -> bool:
        connection = http.client.HTTPConnection(LOOPBACK, self._http_port, timeout=_PING_TIMEOUT_SECONDS)
        try:
            connection.request("GET", "/ping")
            return connection.getresponse().status == 204
        except OSError:
            return False
        finally:
            connection.close()
