"""InfluxDB as the destination of the carbon-intensity points, through influxdb3-python."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal
from urllib.parse import urlsplit

import dagster as dg
import urllib3
from influxdb_client_3 import InfluxDBClient3
from influxdb_client_3.exceptions import InfluxDBError, InfluxDBPartialWriteError
from pydantic import ConfigDict, Field, PrivateAttr, field_validator
from tenacity import RetryCallState

from carbon_pipeline.retry import RetryPolicy
from carbon_pipeline.sinks.base import PointSink, SinkWriteError, WriteReport
from carbon_pipeline.sinks.influxdb_reads import InfluxQLReader
from carbon_pipeline.sinks.line_protocol import PRECISION, series_tags

# InfluxDB 3 and 1.x both recommend 5,000-10,000 lines per request; 5,000 lines of this schema are
# about 0.7 MB, far below the 10 MiB request limit of InfluxDB 3 Core.
MAX_LINES_PER_REQUEST = 5_000
WriteApi = Literal["v3", "v2"]
HOST_EXAMPLES = "http://influxdb:8086 or https://influxdb.example.com:8181"
# The first backoff window; later ones double up to ``backoff_max_seconds``.
BACKOFF_BASE_SECONDS = 0.5


class InfluxDBWriteError(SinkWriteError):
    """A batch could not be written; ``status`` is InfluxDB's HTTP status, when it answered."""

    def __init__(self, message: str, *, status: int | None, retryable: bool) -> None:
        super().__init__(message, retryable=retryable)
        self.status = status


class InfluxDBResource(PointSink):
    """Writes points to InfluxDB 3 Core/Enterprise (``/api/v3/write_lp``) or InfluxDB 2.x, Cloud and
    1.8+ (``/api/v2/write``) with the synchronous influxdb3-python client.

    That client retries nothing and lets urllib3 errors escape, so this resource retries 429, 5xx,
    timeouts and refused connections under the pipeline's retry policy (``carbon_pipeline.retry``:
    full-jitter backoff, ``Retry-After`` honoured within the budget), and turns
    every failure into an ``InfluxDBWriteError`` that names the database and the rejected lines.
    """

    host: str = Field(description=f"Full URL with scheme and port, e.g. {HOST_EXAMPLES}.")
    token: str = Field(
        repr=False, description="API token; give it as EnvVar('INFLUXDB_TOKEN') so it never shows in the UI."
    )
    database: str = Field(description="Database (InfluxDB 3) or bucket (InfluxDB 2.x; db/rp on 1.8).")
    write_api: WriteApi = Field(
        default="v3", description="v3: /api/v3/write_lp (InfluxDB 3); v2: /api/v2/write (InfluxDB 2.x, Cloud, 1.8+)."
    )
    write_timeout_seconds: float = Field(default=10.0, gt=0, description="Timeout of one write request.")
    max_attempts: int = Field(default=5, ge=1, description="Attempts per batch on retryable failures.")
    max_retry_seconds: float = Field(default=60.0, gt=0, description="Time budget for retrying one batch.")
    backoff_max_seconds: float = Field(default=10.0, gt=0, description="Longest wait between attempts.")
    verify_ssl: bool = Field(default=True, description="Verify TLS certificates; only disable for a known test server.")

    # Validation errors must not echo what was passed in (a URL may carry credentials).
    model_config = ConfigDict(hide_input_in_errors=True)

    _client: InfluxDBClient3 | None = PrivateAttr(default=None)

    @field_validator("host")
    @classmethod
    def _full_url(cls, host: str) -> str:
        return validate_host_url(host)

    def destination(self) -> str:
        return f"InfluxDB {self.host} database {self.database!r} ({self.write_api} write API)"

    def write_lines(self, lines: Sequence[str]) -> WriteReport:
        requests = 0
        for offset in range(0, len(lines), MAX_LINES_PER_REQUEST):
            requests += self._write_batch(lines[offset : offset + MAX_LINES_PER_REQUEST], offset)
        return WriteReport(lines=len(lines), requests=requests, destination=self.destination())

    def stored_moer(
        self, region: str, signal_type: str, source: str, start: datetime, end: datetime
    ) -> dict[int, float]:
        reader = InfluxQLReader(
            self.host,
            self.token,
            self.database,
            self.write_timeout_seconds,
            self.verify_ssl,
            self._policy(),
            self.destination,
        )
        return reader.moer(dict(series_tags(region, signal_type, source)), start, end)

    def teardown_after_execution(self, context: object) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _write_batch(self, batch: Sequence[str], offset: int) -> int:
        attempts = self._policy().retrying(_is_retryable, before_sleep=self._log_retry)
        try:
            for attempt in attempts:
                with attempt:
                    self._client_for_run().write(record="\n".join(batch), write_precision=PRECISION)
        except (InfluxDBError, urllib3.exceptions.HTTPError) as error:
            raise self._write_error(error, batch, offset, attempts.statistics.get("attempt_number", 1)) from None
        return attempts.statistics.get("attempt_number", 1)

    def _policy(self) -> RetryPolicy:
        return RetryPolicy(self.max_attempts, self.max_retry_seconds, BACKOFF_BASE_SECONDS, self.backoff_max_seconds)

    def _client_for_run(self) -> InfluxDBClient3:
        if self._client is None:
            self._client = InfluxDBClient3(
                host=self.host,
                token=self.token,
                database=self.database,
                write_use_v2_api=self.write_api == "v2",
                write_timeout=int(self.write_timeout_seconds * 1000),
                verify_ssl=self.verify_ssl,
            )
        return self._client

    def _log_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        dg.get_dagster_logger().warning(
            "InfluxDB write to %s failed (attempt %d): %s; retrying",
            self.destination(),
            state.attempt_number,
            _summary(error),
        )

    def _write_error(self, error: Exception, batch: Sequence[str], offset: int, attempts: int) -> InfluxDBWriteError:
        status = _status(error)
        lines = f"lines {offset + 1}-{offset + len(batch)} of the run"
        return InfluxDBWriteError(
            f"InfluxDB write to {self.destination()} failed after {attempts} attempt(s) ({lines}): {_summary(error)}",
            status=status,
            retryable=_is_retryable(error),
        )


def validate_host_url(host: str) -> str:
    """Accept only a full http(s) URL with an explicit port and nothing else.

    influxdb3-python silently drops paths, defaults to https on port 443 and crashes on a bare
    ``host:port``; the old service passed such values through unchecked.
    """
    parts = urlsplit(host.strip())
    try:
        port = parts.port
    except ValueError:
        port = None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or port is None
        or parts.username is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise ValueError(
            f"INFLUXDB_HOST must be a full URL with scheme, host and port and nothing else, "
            f"such as {HOST_EXAMPLES}; got {_redacted_url(host)!r}"
        )
    return f"{parts.scheme}://{parts.netloc}"


def _redacted_url(host: str) -> str:
    parts = urlsplit(host.strip())
    if parts.username is None and parts.password is None:
        return host
    return host.replace(parts.netloc, "***@" + parts.netloc.rsplit("@", 1)[-1])


def _status(error: BaseException | None) -> int | None:
    response = getattr(error, "response", None)
    status = getattr(error, "status", None) or getattr(response, "status", None)
    return int(status) if status else None


def _is_retryable(error: BaseException) -> bool:
    if isinstance(error, urllib3.exceptions.HTTPError):
        return True
    status = _status(error)
    return isinstance(error, InfluxDBError) and status is not None and (status == 429 or status >= 500)


def _summary(error: BaseException | None) -> str:
    if isinstance(error, InfluxDBPartialWriteError):
        details = "; ".join(
            f"line {line.line_number}: {line.error_message} ({line.original_line})" for line in error.line_errors[:5]
        )
        kept = ", the other lines of the request were stored" if _other_lines_stored(error) else ""
        return f"partial write rejected {len(error.line_errors)} line(s){kept}: {details}"
    if isinstance(error, InfluxDBError) and _status(error) is None and getattr(error, "reason", None):
        # influxdb3-python turns TLS failures (an untrusted certificate) into a status-less error whose
        # message is only "no response"; the reason is what tells the operator what went wrong.
        return f"no response: {' '.join(str(getattr(error, 'reason', '')).split())}"
    if isinstance(error, InfluxDBError):
        return f"HTTP {_status(error)}: {error.message}"
    return f"{type(error).__name__}: {error}"


def _other_lines_stored(error: InfluxDBPartialWriteError) -> bool:
    """A failed run usually writes nothing; after this reply it did, and the operator must know.

    InfluxDB 3 says "partial write of line protocol occurred" when it stored the valid lines
    (``accept_partial``, the default); "parsing failed" means it refused the whole request.
    """
    return str(error.message).lower().startswith("partial write of line protocol occurred")
