"""The benchmarks keep working: a one-day run of each, with its printed figures checked for sense."""

from __future__ import annotations

import pytest

from benchmarks.data_path import main, measure_data_path


def test_data_path_benchmark_pushes_a_day_through_every_stage_and_both_writers() -> None:
    figures = measure_data_path(days=1, latency_seconds=0.0)
    assert figures.points == 288 and figures.watttime_calls == 1
    assert min(figures.fetch_seconds, figures.write_seconds, figures.raw_post_seconds) > 0
    assert figures.points_per_second == pytest.approx(288 / figures.data_path_seconds)


def test_data_path_benchmark_prints_its_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--days", "1", "--latency-ms", "5"]) == 0
    printed = capsys.readouterr().out
    assert "simulator latency 5 ms" in printed
    for figure in ("points                    288", "our write / raw POST", "data path points/s"):
        assert figure in printed
