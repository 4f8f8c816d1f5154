"""A sink that needs no server: line-protocol files, one per UTC day, loadable into InfluxDB later."""

from __future__ import annotations

import errno
import fcntl
import os
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import Field

from carbon_pipeline.sinks.base import PointSink, SinkWriteError, WriteReport
from carbon_pipeline.sinks.line_protocol import (
    MEASUREMENT,
    line_measurement,
    line_moer,
    line_series_key,
    line_timestamp,
    series_prefix,
)

# Refusals that may clear by themselves, so a re-run can succeed: a full disk or quota, a busy file system.
# Anything else (no permission, a file where the folder should be) needs a person first.
TRANSIENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EAGAIN, errno.EBUSY, errno.EINTR})
# Beside each day file, the file its writers lock; it holds nothing and is not line protocol.
LOCK_SUFFIX = ".lock"


class LineProtocolFileSink(PointSink):
    """Writes points as InfluxDB line protocol under ``directory``, a folder per measurement and a file per UTC day.

    Used by the local deployment. A folder or file it may not write (any ``OSError``: no permission, a
    folder in the way, a full disk) fails the write with a ``SinkWriteError`` naming it. Re-materializing
    an interval replaces its lines instead of appending them, and runs writing the same day at once on one
    host take turns on the day file's lock, so the files hold each point once and load cleanly with
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

    def stored_moer(
        self, region: str, signal_type: str, source: str, start: datetime, end: datetime
    ) -> dict[int, float]:
        series = series_prefix(region, signal_type, source)
        first, last = int(start.timestamp()), int(end.timestamp())
        stored = {}
        for path in self._day_files(start, end):
            with _refusals_named(path):
                lines = _read_lines(path)
            for line in lines:
                if line_series_key(line) == series and first <= line_timestamp(line) < last:
                    stored[line_timestamp(line)] = line_moer(line)
        return stored

    def _day_files(self, start: datetime, end: datetime) -> list[Path]:
        folder = self.measurement_directory(MEASUREMENT)
        days = range((end - start).days + 2)
        return [folder / f"{_day(int((start + timedelta(days=day)).timestamp()))}.lp" for day in days]


@contextmanager
def _refusals_named(path: Path) -> Iterator[None]:
    """The operating system's refusal as the sink's error, naming the file or folder it was about."""
    try:
        yield
    except OSError as error:
        reason = error.strerror or type(error).__name__
        where = path if error.filename in (None, str(path)) else f"{path} ({error.filename})"
        raise SinkWriteError(
            f"cannot write line-protocol file(s) at {where}: {reason}", retryable=error.errno in TRANSIENT_ERRNOS
        ) from error


def _day(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%d")


def _merge_into(path: Path, lines: Iterable[str]) -> None:
    """Replace points with the same series and timestamp, holding the day's lock from the read to the swap.

    Without the lock two writers of one day both read the old file and the second swap drops the first's
    lines. The new content goes to a temporary file of this write's own, swapped in by ``os.replace``, so a
    reader sees the old file or the new one, never a half-written one, and a failed write leaves no trace.
    """
    with _day_lock(path):
        points = {_point_key(line): line for line in _read_lines(path)}
        points.update((_point_key(line), line) for line in lines)
        ordered = sorted(points.items(), key=lambda item: (item[0][1], item[0][0]))
        _replace_atomically(path, "".join(line + "\n" for _, line in ordered))


@contextmanager
def _day_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path``'s lock file (``<day>.lp.lock`` beside it), for writers on this host.

    The lock is ``fcntl.flock`` from the standard library: the kernel releases it when the holder dies, so a
    killed run leaves no stale lock, and it also separates threads of one process, since each call opens the
    lock file anew. The day file itself cannot carry the lock, because ``os.replace`` swaps it for a new
    file. ``filelock``'s Unix lock is this same call, so it would add a dependency and nothing else; the
    local deployment runs on Linux or macOS, both of which have ``flock``.
    """
    with open(path.with_name(path.name + LOCK_SUFFIX), "a", encoding="utf-8") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _replace_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, flush it to disk, then swap it in; remove it on failure.

    The name is this write's own (``x`` refuses an existing file); unlike ``tempfile.mkstemp``'s owner-only
    mode, ``open`` gives the file the permissions the umask allows, as the day file had before.
    """
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "x", encoding="utf-8") as temporary_file:
            temporary_file.write(text)
            temporary_file.flush()
            os.fsync(temporary_file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _read_lines(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line]


def _point_key(line: str) -> tuple[str, int]:
    return line_series_key(line), line_timestamp(line)
