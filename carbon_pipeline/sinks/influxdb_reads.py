"""Reading stored MOER back from InfluxDB, through the v1-compatible InfluxQL endpoint ``/query``.

influxdb3-python queries over Arrow Flight, which only InfluxDB 3 speaks; ``/query`` is served by InfluxDB 3
Core/Enterprise, 2.x (through the bucket's DBRP mapping) and 1.8 alike, with the same token header as the
writes. The revision sweep is its only reader: it needs the value a revision replaces.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import urllib3

from carbon_pipeline.retry import RetryPolicy
from carbon_pipeline.sinks.base import SinkReadError
from carbon_pipeline.sinks.line_protocol import MEASUREMENT

QUERY_PATH = "/query"
# Tag values are ours (region codes, signal types, source names); quoting is for safety, not for use.
_STRING_ESCAPES = str.maketrans({"\\": "\\\\", "'": "\\'"})


class _Retryable(Exception):
    """A reply worth asking again for: 429, 5xx, or no reply at all."""


@dataclass(frozen=True)
class InfluxQLReader:
    """One database's ``/query`` endpoint, asked under the pipeline's retry policy."""

    host: str
    token: str = field(repr=False)
    database: str
    timeout_seconds: float
    verify_ssl: bool
    policy: RetryPolicy
    describe: Callable[[], str]

    def moer(self, tags: dict[str, str], start: datetime, end: datetime) -> dict[int, float]:
        """``moer_lbs_per_mwh`` of the series with ``tags`` in [start, end), by Unix second."""
        where = " AND ".join(f'"{key}" = {_quoted(value)}' for key, value in tags.items())
        influxql = (
            f'SELECT "moer_lbs_per_mwh" FROM "{MEASUREMENT}" WHERE {where} '
            f"AND time >= {_nanoseconds(start)} AND time < {_nanoseconds(end)}"
        )
        rows = self._rows(influxql)
        return {int(time): float(moer) for time, moer in rows if moer is not None}

    def _rows(self, influxql: str) -> list[list[Any]]:
        try:
            for attempt in self.policy.retrying(lambda error: isinstance(error, _Retryable)):
                with attempt:
                    document = self._ask(influxql)
        except _Retryable as error:
            raise SinkReadError(f"InfluxDB read from {self.describe()} failed: {error}", retryable=True) from None
        (result,) = document.get("results", [{}])
        if "error" in result:
            raise SinkReadError(f"InfluxDB read from {self.describe()} refused: {result['error']}", retryable=False)
        return [row for series in result.get("series", []) for row in series["values"]]

    def _ask(self, influxql: str) -> dict[str, Any]:
        try:
            with urllib3.PoolManager(cert_reqs="CERT_REQUIRED" if self.verify_ssl else "CERT_NONE") as pool:
                response = pool.request(
                    "GET",
                    self.host + QUERY_PATH,
                    fields={"db": self.database, "q": influxql, "epoch": "s"},
                    headers={"Authorization": f"Token {self.token}"},
                    timeout=self.timeout_seconds,
                    retries=False,
                )
        except urllib3.exceptions.HTTPError as error:
            raise _Retryable(f"{type(error).__name__}: {error}") from None
        if response.status == 429 or response.status >= 500:
            raise _Retryable(f"HTTP {response.status}: {response.data[:200]!r}")
        if response.status != 200:
            raise SinkReadError(
                f"InfluxDB read from {self.describe()} refused: HTTP {response.status}: {response.data[:200]!r}",
                retryable=False,
            )
        document: dict[str, Any] = json.loads(response.data)
        return document


def _quoted(value: str) -> str:
    return "'" + value.translate(_STRING_ESCAPES) + "'"


def _nanoseconds(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000
