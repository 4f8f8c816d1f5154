"""A sink that needs no server: line-protocol files, one per UTC day, loadable into InfluxDB later."""

from __future__ import annotations

import errno
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from pydantic import Field

from carbon_pipeline.sinks.base import PointSink, SinkWriteError, WriteReport
from carbon_pipeline.sinks.line_protocol import line_measurement, line_series_key, line_timestamp

# Refusals that may clear by themselves, so a re-run can succeed: a full disk or quota, a busy file system.
# Anything else (no permission, a file where the folder should be) needs a person first.
TRANSIENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EAGAIN, errno.EBUSY, errno.EINTR})


class LineProtocolFileSink(PointSink):
    """Writes points as InfluxDB line protocol under ``directory``, a folder per measurement and a file per UTC day.

    Used by the local deployment. A folder or file it may not write fails the write with a
    ``SinkWriteError`` naming it. Re-materializing an interval replaces its lines instead of
    appending them, so the files hold each point once and load cleanly with
    ``curl --data-binary @FILE 'http://HOST:8086/write?db=DB&precision=s'`` (or ``/api/v3/write_lp``).
    """

    directory: str = Field(description="Folder for the files; created when missing.")

    def destination(self) -> str:
        return f"line-protocol files in {self.directory}/<measurement>"

    def measurement_directory(self, measurement: str) -> Path:
        return Path(self.directory) / measurement

    def write_lines(self, lines: Sequence[str]) -> WriteReport:
        by_file: dict[tuple[str, str], list[str]] = defaultdict(list)
        for line in lines:
            by_file[(line_measurement(line), _day(line_timestamp(line)))].append(line)
        for measurement in sorted({measurement for measurement, _ in by_file}):
            folder = self.measurement_directory(measurement)
            with _refusals_named(folder):
                folder.mkdir(parents=True, exist_ok=True)
        for (measurement, day), day_lines in by_file.items():
            path = self.measurement_directory(measurement) / f"{day}.lp"
            with _refusals_named(path):
                _merge_into(path, day_lines)
        return WriteReport(lines=len(lines), requests=len(by_file), destination=self.destination())


@contextmanager
def _refusals_named(path: Path) -> Iterator[None]:
    """The operating system's refusal as the sink's error, naming the file or folder it was about."""
    try:
        yield
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise SinkWriteError(
            f"cannot write line-protocol file(s) at {path}: {reason}", retryable=error.errno in TRANSIENT_ERRNOS
        ) from error


def _day(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%d")


def _merge_into(path: Path, lines: Iterable[str]) -> None:
    """Replace points with the same series and timestamp, then swap the file in atomically."""
    points = {_point_key(line): line for line in _read_lines(path)}
    points.update((_point_key(line), line) for line in lines)
    ordered = sorted(points.items(), key=lambda item: (item[0][1], item[0][0]))
    temporary = path.with_suffix(".lp.tmp")
    temporary.write_text("".join(line + "\n" for _, line in ordered), encoding="utf-8")
    os.replace(temporary, path)


def _read_lines(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line]


def _point_key(line: str) -> tuple[str, int]:
    return line_series_key(line), line_timestamp(line)
