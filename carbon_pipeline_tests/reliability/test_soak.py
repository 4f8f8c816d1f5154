"""The soak (``make soak``): its verdict fails on any loss, and a few simulated hours of it lose nothing.

The verdict is checked on crafted cases, so a soak that could not notice a missing, wrong or
duplicate point or an alert too many cannot pass; the short soak runs the same code as
``make soak``, with one seed over four hours of ticks.
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime

import pytest

from benchmarks.soak import soak
from benchmarks.soak_plan import OUTAGE_TICKS, episode_at, fault_plan
from benchmarks.soak_report import SoakFigures, expected_alerts, render, sent_alerts, tally_points
from carbon_pipeline_tests.support.pipeline_harness import StoredPoint

START = datetime(2025, 3, 1, tzinfo=UTC)
REGIONS = ("CAISO_NORTH", "PJM_DC")
# Four hours whose plan holds a transient fault of each layer, five ticks of InfluxDB replies lost after
# the write was stored (an alerted streak), a WattTime outage too short for an alert, and bad data.
SHORT_SEED = 28
SHORT_DAYS = 4 / 24


def _points(region_offset: float, count: int = 3) -> list[StoredPoint]:
    first = int(START.timestamp())
    return [StoredPoint(first + 300 * index, 500.0 + region_offset + index, 226.8 + index) for index in range(count)]


def _truth() -> dict[tuple[str, datetime], list[StoredPoint]]:
    return {("CAISO_NORTH", START): _points(0.0)}


def test_an_exact_copy_of_the_truth_is_lossless() -> None:
    tally = tally_points(_truth(), {"CAISO_NORTH": _points(0.0)})
    assert (tally.intervals, tally.present, tally.correct, tally.points) == (1, 1, 1, 3)
    assert tally.lossless


def test_a_missing_point_is_reported_as_lost() -> None:
    tally = tally_points(_truth(), {"CAISO_NORTH": _points(0.0)[:2]})
    assert (tally.present, tally.correct, tally.missing, tally.wrong, tally.duplicate) == (0, 0, 1, 0, 0)
    assert not tally.lossless
    figures = SoakFigures(1, 1 / 96, ("CAISO_NORTH",), 1, points=tally)
    assert figures.problems() == [f"data: {tally}"]


def test_a_wrong_value_a_duplicate_and_a_point_off_the_truth_are_reported() -> None:
    exact = _points(0.0)
    wrong = [exact[0], StoredPoint(exact[1].time, exact[1].moer + 1, exact[1].grams), exact[2]]
    assert tally_points(_truth(), {"CAISO_NORTH": wrong}).wrong == 1
    doubled = tally_points(_truth(), {"CAISO_NORTH": [*exact, exact[1]]})
    assert (doubled.present, doubled.correct, doubled.duplicate) == (1, 0, 1)
    stray = StoredPoint(exact[0].time + 60, 1.0, 1.0)
    assert tally_points(_truth(), {"CAISO_NORTH": [*exact, stray]}).wrong == 1
    assert not tally_points(_truth(), {"CAISO_NORTH": exact, "PJM_DC": exact}).lossless


def test_expected_alerts_follow_the_streak_rule() -> None:
    down = {"CAISO_NORTH": "influxdb_write", "PJM_DC": "influxdb_write"}
    stored = dict.fromkeys(REGIONS)
    outcomes = [down, down, stored, down, down, down, down, stored]
    assert expected_alerts(outcomes, threshold=3) == Counter(
        {("alert", "influxdb_write", region): 1 for region in REGIONS}
        | {("recovery", "influxdb_write", region): 1 for region in REGIONS}
    )


def test_rejected_data_is_alerted_at_once_and_kinds_keep_their_own_streaks() -> None:
    rejected = {"CAISO_NORTH": "data_rejected", "PJM_DC": None}
    outage = {"CAISO_NORTH": "watttime", "PJM_DC": "watttime"}
    outcomes = [outage, outage, rejected, outage, dict.fromkeys(REGIONS)]
    assert expected_alerts(outcomes, threshold=3) == Counter(
        {
            ("alert", "data_rejected", "CAISO_NORTH"): 1,
            ("alert", "watttime", "CAISO_NORTH"): 1,  # the rejected data neither reset nor advanced it
            ("recovery", "data_rejected", "CAISO_NORTH"): 1,
            ("recovery", "watttime", "CAISO_NORTH"): 1,
        }
    )  # PJM_DC stored the rejected tick: its WattTime streak restarted and never reached 3


def test_an_alert_missing_or_extra_fails_the_soak() -> None:
    expected = expected_alerts([{"IE": "data_rejected"}, {"IE": None}], threshold=3)
    sent = sent_alerts([{"event": "alert", "kind": "data_rejected", "region": "IE", "text": "..."}] * 2)
    figures = SoakFigures(1, 1 / 96, ("IE",), 1, points=tally_points({}, {}), alerts_expected=expected)
    figures.alerts_sent = sent
    (problem,) = figures.problems()
    assert "expected but not sent [('recovery', 'data_rejected', 'IE')]" in problem
    assert "sent but not expected [('alert', 'data_rejected', 'IE')]" in problem


def test_the_fault_plan_is_the_seeds_and_holds_outages_over_consecutive_ticks() -> None:
    plan = fault_plan(1, 2 * 96, REGIONS)
    assert plan == fault_plan(1, 2 * 96, REGIONS) != fault_plan(2, 2 * 96, REGIONS)
    assert all(earlier.end <= later.first for earlier, later in itertools.pairwise(plan))
    outages = [episode for episode in plan if episode.sort == "outage"]
    assert {episode.fault.layer for episode in outages} == {"WattTime", "InfluxDB"}
    assert all(OUTAGE_TICKS[0] <= episode.ticks <= OUTAGE_TICKS[1] for episode in outages[:-1])
    assert all(episode.region in REGIONS for episode in plan if episode.sort == "bad data")
    outage = outages[0]
    assert [episode_at(plan, tick) for tick in range(outage.first, outage.end)] == [outage] * outage.ticks
    assert episode_at(plan, outage.end) != outage


@pytest.mark.integration
@pytest.mark.slow
def test_a_four_hour_soak_loses_nothing_and_alerts_as_the_rule_says() -> None:
    figures = soak(SHORT_SEED, SHORT_DAYS, REGIONS)
    print("\n".join(render(figures)))
    assert figures.problems() == []
    assert figures.ticks == 16 and figures.points is not None and figures.points.intervals == 2 * 16
    assert (
        figures.faults["InfluxDB lost_reply (outage)"] == 5 and figures.failed_runs == figures.expected_failed_runs > 0
    )
    assert figures.alerts_sent[("alert", "influxdb_write", "CAISO_NORTH")] == 1
    assert figures.gap_fill_runs > 0 and figures.held_back > 0
