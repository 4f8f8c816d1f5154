"""The line-protocol file sink under writers in other processes: no line lost, none twice, no half file left."""

from __future__ import annotations

import json
import multiprocessing
import resource
from datetime import UTC, datetime
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from carbon_pipeline.sinks.base import SinkWriteError
from carbon_pipeline.sinks.files import LineProtocolFileSink

DAY = datetime(2025, 1, 1, tzinfo=UTC)
DAY_FILE = Path("carbon_intensity") / "2025-01-01.lp"
WRITERS = 2
BATCHES = 60
POINTS_PER_BATCH = 3
# Points already in the day file, so each read-modify-write has a real file to read and rewrite.
SEED_POINTS = 3000
# A file size the rlimit lets a writer reach: the seed file fits, the seed plus a large batch does not.
SIZE_LIMIT_BYTES = 400_000


def _line(region: str, offset_seconds: int, value: float = 900.5) -> str:
    timestamp = int(DAY.timestamp()) + offset_seconds
    return f"carbon_intensity,region={region},source=simulator moer_lbs_per_mwh={value} {timestamp}"


def _seed_lines() -> list[str]:
    return [_line("SEED", offset) for offset in range(SEED_POINTS)]


def _batch(writer: int, batch: int) -> list[str]:
    """Points of this writer alone, and points both writers write identically (a re-materialized interval)."""
    offsets = [batch * POINTS_PER_BATCH + point for point in range(POINTS_PER_BATCH)]
    own = [_line(f"WRITER_{writer}", offset, value=writer + 0.5) for offset in offsets]
    shared = [_line("SHARED", offset) for offset in offsets]
    return own + shared


def _write_batches(directory: str, writer: int, start: Barrier, result_path: str) -> None:
    """One writer process: every batch after the other writer is ready, then which batches succeeded."""
    sink = LineProtocolFileSink(directory=directory)
    start.wait()
    written, refused = [], []
    for batch in range(BATCHES):
        try:
            sink.write_lines(_batch(writer, batch))
        except SinkWriteError as error:
            refused.append(str(error))
        else:
            written.append(batch)
    Path(result_path).write_text(json.dumps({"written": written, "refused": refused}))


def _write_under_a_file_size_limit(directory: str, result_path: str) -> None:
    """A writer whose file may not grow past ``SIZE_LIMIT_BYTES``: the kernel refuses as it does on a full disk."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (SIZE_LIMIT_BYTES, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    sink = LineProtocolFileSink(directory=directory)
    try:
        sink.write_lines([_line("LARGE", offset) for offset in range(SEED_POINTS, 4 * SEED_POINTS)])
    except SinkWriteError as error:
        Path(result_path).write_text(json.dumps({"refused": str(error), "retryable": error.retryable}))
    else:
        Path(result_path).write_text(json.dumps({"refused": None}))


def _run_processes(targets: list[tuple[object, tuple[object, ...]]]) -> None:
    """Run each target in a fresh interpreter and wait for all; a crashed one fails the test."""
    spawn = multiprocessing.get_context("spawn")
    processes = [spawn.Process(target=target, args=args) for target, args in targets]  # type: ignore[attr-defined]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0, f"writer process ended with {process.exitcode}"


def test_two_processes_writing_one_day_at_once_keep_every_line_exactly_once(tmp_path: Path) -> None:
    sink = LineProtocolFileSink(directory=str(tmp_path))
    sink.write_lines(_seed_lines())
    start = multiprocessing.get_context("spawn").Barrier(WRITERS)
    results = [tmp_path / f"writer_{writer}.json" for writer in range(WRITERS)]
    _run_processes(
        [(_write_batches, (str(tmp_path), writer, start, str(results[writer]))) for writer in range(WRITERS)]
    )

    outcomes = [json.loads(path.read_text()) for path in results]
    expected = set(_seed_lines())
    for writer, outcome in enumerate(outcomes):
        expected.update(line for batch in outcome["written"] for line in _batch(writer, batch))
    stored = (tmp_path / DAY_FILE).read_text(encoding="utf-8").splitlines()
    assert len(stored) == len(set(stored))  # no point twice
    missing = expected - set(stored)
    assert not missing, f"{len(missing)} of {len(expected)} written lines lost, e.g. {sorted(missing)[:3]}"
    assert set(stored) == expected
    assert [outcome["refused"] for outcome in outcomes] == [[]] * WRITERS  # neither had to wait its turn out
    assert sorted(path.name for path in (tmp_path / "carbon_intensity").iterdir()) == [
        "2025-01-01.lp",
        "2025-01-01.lp.lock",
    ]


def test_a_write_the_file_system_refuses_midway_is_a_sink_error_and_leaves_the_old_file_whole(tmp_path: Path) -> None:
    LineProtocolFileSink(directory=str(tmp_path)).write_lines(_seed_lines())
    before = (tmp_path / DAY_FILE).read_bytes()
    result = tmp_path / "result.json"
    _run_processes([(_write_under_a_file_size_limit, (str(tmp_path), str(result)))])

    outcome = json.loads(result.read_text())
    assert outcome["refused"] is not None, "the size limit let the write through"
    assert outcome["refused"].startswith(f"cannot write line-protocol file(s) at {tmp_path / DAY_FILE}")
    assert outcome["refused"].endswith(": File too large")
    assert not outcome["retryable"]
    assert (tmp_path / DAY_FILE).read_bytes() == before
    assert sorted(path.name for path in (tmp_path / "carbon_intensity").iterdir()) == [
        "2025-01-01.lp",
        "2025-01-01.lp.lock",
    ]


def test_a_folder_where_the_day_files_lock_should_be_is_a_sink_error_naming_both(tmp_path: Path) -> None:
    lock = tmp_path / "carbon_intensity" / "2025-01-01.lp.lock"
    lock.mkdir(parents=True)
    with pytest.raises(SinkWriteError) as raised:
        LineProtocolFileSink(directory=str(tmp_path)).write_lines([_line("CAISO_NORTH", 0)])
    assert str(raised.value) == (
        f"cannot write line-protocol file(s) at {tmp_path / DAY_FILE} ({lock}): Is a directory"
    )
    assert not raised.value.retryable
    assert not (tmp_path / DAY_FILE).exists()


def test_a_swapped_in_day_file_has_the_permissions_of_any_new_file_in_its_folder(tmp_path: Path) -> None:
    LineProtocolFileSink(directory=str(tmp_path)).write_lines([_line("CAISO_NORTH", 0)])
    probe = tmp_path / "carbon_intensity" / "probe"
    probe.write_text("")
    assert (tmp_path / DAY_FILE).stat().st_mode == probe.stat().st_mode  # readable by a loader as the umask allows
