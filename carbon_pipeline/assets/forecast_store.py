"""Writing forecasts in large batches from several region threads, and remembering which issues are stored.

One InfluxDB request per issue would be 2,880 requests for a month's backfill; one for the whole run would
hold 829,440 lines in memory. The writer sits between: lines pile up to ``FLUSH_LINES`` and go out in one
request, and an issue counts as stored only once the request carrying its lines succeeded. After a failed
write nothing more is written: the run fails, naming each region and issue interval not stored.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import dagster as dg
import pandas as pd

from carbon_pipeline.assets.interval_figures import interval_figures
from carbon_pipeline.forecast_validation import IssueWindow
from carbon_pipeline.partitions import contiguous_windows, interval_key, interval_start, partition_key_text
from carbon_pipeline.run_outcomes import FailureKind, RegionFailure
from carbon_pipeline.sinks.base import PointSink, SinkWriteError

FLUSH_LINES = 200_000
# The headline values shown with each issue in the UI: the forecast 1 hour ahead.
HEADLINE_HORIZON_MINUTES = 60


@dataclass
class _Batch:
    """Issues whose lines wait in the same request."""

    lines: list[str] = field(default_factory=list)
    issues: list[tuple[str, str]] = field(default_factory=list)
    figures: list[pd.DataFrame] = field(default_factory=list)
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    window_metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    points: int = 0


@dataclass
class StoredIssues:
    """The issues of a run whose lines are stored, with their figures and the writes that stored them.

    ``issues`` holds (region, interval key) pairs; ``metadata`` and ``window_metadata`` each issue's own, for
    the forecast and the windows, keyed like its partition.
    """

    issues: list[tuple[str, str]] = field(default_factory=list)
    figures: list[pd.DataFrame] = field(default_factory=list)
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    window_metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    points: int = 0
    report_lines: int = 0
    report_requests: int = 0
    destination: str = ""

    def figures_frame(self) -> pd.DataFrame:
        """Every stored issue's figures, indexed like ``interval_figures``'s."""
        return pd.concat(self.figures)


class StoringWriter:
    """Thread-safe batching in front of a ``PointSink``: the region threads share one batch and one write at a time."""

    def __init__(self, sink: PointSink) -> None:
        self._sink = sink
        self._lock = threading.Lock()
        self._batch = _Batch()
        self._stored = StoredIssues(destination=sink.destination())
        self._failure: SinkWriteError | None = None
        self._unstored: set[tuple[str, str]] = set()

    @property
    def failed(self) -> bool:
        return self._failure is not None

    def add(
        self, region: str, frame: pd.DataFrame, lines: Sequence[str], window_metadata: dict[str, dict[str, Any]]
    ) -> None:
        """Queue the lines of ``frame``'s issues (all of ``region``), writing the batch once it is large."""
        figures = interval_figures(frame, interval_column="issue_time")
        metadata = _issue_metadata(region, frame)
        issues = [(region, key.split("|", 1)[1]) for key in metadata]
        with self._lock:
            if self._failure is not None:
                self._unstored.update(issues)
                return
            batch = self._batch
            batch.lines.extend(lines)
            batch.issues.extend(issues)
            batch.figures.append(figures)
            batch.metadata.update(metadata)
            batch.window_metadata.update(window_metadata)
            batch.points += len(frame)
            if len(batch.lines) >= FLUSH_LINES:
                self._flush()

    def finish(self) -> StoredIssues:
        with self._lock:
            if self._failure is None and self._batch.lines:
                self._flush()
            return self._stored

    def failures(self) -> list[RegionFailure]:
        """The write failure, naming every region and issue interval it kept from being stored."""
        if self._failure is None:
            return []
        starts: dict[str, list[datetime]] = {}
        for region, key in self._unstored:
            starts.setdefault(region, []).append(interval_start(key))
        windows = [
            IssueWindow(region, window.start, window.end)
            for region in sorted(starts)
            for window in contiguous_windows(region, starts[region])
        ]
        message = f"{'; '.join(window.describe() for window in windows)}: forecasts not stored: {self._failure}"
        failure = RegionFailure(tuple(sorted(starts)), FailureKind.INFLUXDB_WRITE, message, self._failure.retryable)
        return [failure]

    def _flush(self) -> None:
        batch, self._batch = self._batch, _Batch()
        try:
            report = self._sink.write_lines(batch.lines)
        except SinkWriteError as error:
            self._failure = error
            self._unstored.update(batch.issues)
            return
        stored = self._stored
        stored.issues.extend(batch.issues)
        stored.figures.extend(batch.figures)
        stored.metadata.update(batch.metadata)
        stored.window_metadata.update(batch.window_metadata)
        stored.points += batch.points
        stored.report_lines += report.lines
        stored.report_requests += report.requests


def _issue_metadata(region: str, frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per issue: when WattTime generated it and what it forecast an hour ahead, keyed like the partition."""
    issues = frame.groupby("issue_time", sort=True)
    generated = issues["generated_at"].first()
    ahead = frame[frame["horizon_minutes"] == HEADLINE_HORIZON_MINUTES].set_index("issue_time")[
        "carbon_intensity_gco2_kwh"
    ]
    metadata = {}
    for issue, generated_at in generated.items():
        own: dict[str, Any] = {"generated_at": dg.MetadataValue.timestamp(generated_at.to_pydatetime())}
        if issue in ahead.index:
            own["forecast_1h_gco2_kwh"] = round(float(ahead[issue]), 3)
        metadata[partition_key_text(region, interval_key(issue.to_pydatetime()))] = own
    return metadata
