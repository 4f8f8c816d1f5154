"""Under `dagster dev`, prod settings: the schedule's tick, a gap-filling run and a UI backfill of the same
intervals, queued together in the real run queue and released together, leave every point once and true."""

from __future__ import annotations

import pytest

from benchmarks.overlap import BACKFILL, GAP_FILL, TICK, overlapping_runs
from carbon_pipeline.partitions import interval_starts
from carbon_pipeline_tests.support.moer_truth import truth


# The schedule ticks on a whole minute at least a minute after `dagster dev` starts, and the backfill daemon
# turns a launch into a run on its 30-second loop: about three minutes, most of it waiting for Dagster.
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_tick_a_gap_fill_and_a_backfill_of_the_same_intervals_at_once_store_each_point_once() -> None:
    with overlapping_runs(regions=1, latency_seconds=0.0) as overlap:
        # Held by the watttime_api pool at 0, every run was queued before any of them started.
        assert {source: len(runs) for source, runs in overlap.queued.items()} == {TICK: 1, GAP_FILL: 1, BACKFILL: 1}
        assert {run["status"] for runs in overlap.queued.values() for run in runs} == {"QUEUED"}
        requested = {source: overlap.requested_keys(runs[0]) for source, runs in overlap.queued.items()}
        # The backfill covers what the tick and the gap fill cover, and more: every interval is written twice.
        assert set(requested[TICK]) | set(requested[GAP_FILL]) < set(requested[BACKFILL])
        assert len(requested[BACKFILL]) == len(interval_starts(overlap.first, overlap.end))

        # None failed because another run wrote the same intervals first.
        assert [run["status"] for run in overlap.runs()] == ["SUCCESS"] * 3
        assert overlap.backfill_status == "COMPLETED_SUCCESS"
        for run in overlap.runs():
            assert overlap.materialized(run) == overlap.requested_keys(run)
        (region,) = overlap.regions
        # Each point once (a second copy, in any series, would be listed), equal to what WattTime published.
        assert overlap.stored() == {region: truth(region, overlap.first, overlap.end)}
