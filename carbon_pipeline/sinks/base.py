"""Where validated points go: the seam that lets each deployment pick its destination."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import dagster as dg


@dataclass(frozen=True)
class WriteReport:
    """What a sink did, for the materialization metadata."""

    lines: int
    requests: int
    destination: str


class SinkWriteError(Exception):
    """Lines could not be stored, whatever the sink; ``retryable`` says whether the same write may succeed later.

    The asset records every sink failure the same way (failure kind ``influxdb_write``), so a sink raises
    this, or a subclass, for anything that went wrong at its destination; messages name the destination,
    never a secret.
    """

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class SinkReadError(SinkWriteError):
    """Stored points could not be read back; a sweep that needs them writes nothing for the region."""


class PointSink(dg.ConfigurableResource, ABC):
    """Receives line-protocol lines from the carbon-intensity asset, and gives back what it stored.

    Lines come from one serializer (``carbon_pipeline.sinks.line_protocol``) whatever the sink, so what a
    local run stores is exactly what production would send to InfluxDB.
    """

    @abstractmethod
    def write_lines(self, lines: Sequence[str]) -> WriteReport:
        """Store every line or raise ``SinkWriteError``; a sink never drops lines silently."""

    @abstractmethod
    def stored_moer(
        self, region: str, signal_type: str, source: str, start: datetime, end: datetime
    ) -> dict[int, float]:
        """The ``carbon_intensity`` MOER stored in [start, end) of one region's series, by Unix second.

        The revision sweep compares WattTime's revised values with these, to write only what changed and to
        say by how much. Raises ``SinkReadError`` when the destination cannot be read.
        """

    @abstractmethod
    def destination(self) -> str:
        """A human description of where points land, free of secrets."""
