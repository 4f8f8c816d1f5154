"""What a soak run found: InfluxDB against the simulator's truth point by point, alerts against their rule.

Everything here works on plain values (points, outcomes, alert payloads), so the verdict itself is
unit-tested on crafted cases: a missing, wrong or duplicate point, or an alert too many, must fail
the soak.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from carbon_pipeline.run_outcomes import FailureKind
from carbon_pipeline_tests.support.pipeline_harness import StoredPoint

Outcome = Mapping[str, str | None]
"""One run as the alerts see it: each region it covered -> the failure kind it failed with, None if stored."""
AlertKey = tuple[str, str, str]
"""(event, failure kind, region) of an alert or recovery notice."""


@dataclass(frozen=True)
class PointTally:
    """Intervals and points of a timeline: expected, present (every point there) and correct (and exact)."""

    intervals: int
    present: int
    correct: int
    points: int
    missing: int
    wrong: int
    duplicate: int

    @property
    def lossless(self) -> bool:
        return self.correct == self.intervals and not (self.missing or self.wrong or self.duplicate)


def tally_points(
    truth: Mapping[tuple[str, datetime], Sequence[StoredPoint]], stored: Mapping[str, Sequence[StoredPoint]]
) -> PointTally:
    """``truth`` per (region, interval start), ``stored`` per region (rows within the timeline only).

    A duplicate is a second row at a point's time (another series of the region: a tag that changed);
    a stored row at a time the truth has no point for counts as wrong.
    """
    rows: dict[tuple[str, int], list[StoredPoint]] = {}
    for region, points in stored.items():
        for point in points:
            rows.setdefault((region, point.time), []).append(point)
    expected_times = {(region, point.time) for (region, _), points in truth.items() for point in points}
    present = correct = missing = wrong = 0
    for (region, _), points in truth.items():
        found = [rows.get((region, point.time), []) for point in points]
        missing += sum(1 for copies in found if not copies)
        wrong += sum(1 for point, copies in zip(points, found, strict=True) if any(row != point for row in copies))
        present += all(found)
        correct += all(copies == [point] for point, copies in zip(points, found, strict=True))
    wrong += sum(len(copies) for key, copies in rows.items() if key not in expected_times)
    duplicate = sum(len(copies) - 1 for copies in rows.values() if len(copies) > 1)
    total = sum(len(points) for points in truth.values())
    return PointTally(len(truth), present, correct, total, missing, wrong, duplicate)


def expected_alerts(outcomes: Iterable[Outcome], threshold: int) -> Counter[AlertKey]:
    """The alerts the README's rule asks for, given runs in the order they finished.

    Per region and failure kind, a streak of failed runs is alerted once, when it reaches
    ``threshold`` (rejected data at once); a region's next stored run ends all its streaks, with one
    recovery notice for each streak that was alerted.
    """
    streaks: dict[str, dict[str, list[int]]] = {}  # region -> kind -> [failures, alerted]
    alerts: Counter[AlertKey] = Counter()
    for outcome in outcomes:
        for region, kind in outcome.items():
            if kind is None:
                for ended, (_, alerted) in streaks.pop(region, {}).items():
                    alerts[("recovery", ended, region)] += alerted
                continue
            streak = streaks.setdefault(region, {}).setdefault(kind, [0, 0])
            streak[0] += 1
            limit = 1 if kind == FailureKind.DATA_REJECTED else threshold
            if not streak[1] and streak[0] >= limit:
                streak[1] = 1
                alerts[("alert", kind, region)] += 1
    return +alerts


def sent_alerts(payloads: Iterable[Mapping[str, object]]) -> Counter[AlertKey]:
    return Counter((str(body["event"]), str(body["kind"]), str(body["region"])) for body in payloads)


@dataclass
class SoakFigures:
    """One seed's soak: what was injected, what the runs did, what InfluxDB and the webhook hold."""

    seed: int
    days: float
    regions: tuple[str, ...]
    ticks: int
    faults: Counter[str] = field(default_factory=Counter)  # fault label -> ticks it was active
    episodes: Counter[str] = field(default_factory=Counter)  # fault label -> episodes
    failed_runs: int = 0
    expected_failed_runs: int = 0
    surprises: list[str] = field(default_factory=list)  # runs that did not do what their fault implies
    gap_fill_runs: int = 0
    held_back: int = 0  # refused intervals the gap filler holds back, requested once the hold is over
    points: PointTally | None = None
    alerts_expected: Counter[AlertKey] = field(default_factory=Counter)
    alerts_sent: Counter[AlertKey] = field(default_factory=Counter)
    seconds: float = 0.0

    def problems(self) -> list[str]:
        """Everything that makes the soak fail: data lost, wrong or duplicated, alerts not as the rule says,
        runs that did not do what their fault implies."""
        found = list(self.surprises)
        if self.points is None or not self.points.lossless:
            found.append(f"data: {self.points}")
        if self.alerts_expected != self.alerts_sent:
            missing = sorted((self.alerts_expected - self.alerts_sent).elements())
            extra = sorted((self.alerts_sent - self.alerts_expected).elements())
            found.append(f"alerts: expected but not sent {missing}, sent but not expected {extra}")
        return found


def render(figures: SoakFigures) -> list[str]:
    """The printed report of one seed."""
    points = figures.points or PointTally(0, 0, 0, 0, 0, 0, 0)
    events = Counter(event for event, _, _ in figures.alerts_sent.elements())
    lines = [
        f"soak seed {figures.seed}: {figures.days:g} simulated day(s), {figures.ticks} ticks, "
        f"regions {', '.join(figures.regions)}, {figures.seconds:.0f} s",
        f"  faults by kind ({sum(figures.episodes.values())} episodes, {sum(figures.faults.values())} ticks):",
        *(
            f"    {label:<44} {figures.episodes[label]:>3} episode(s) {ticks:>4} tick(s)"
            for label, ticks in sorted(figures.faults.items())
        ),
        f"  scheduled runs failed {figures.failed_runs} (expected {figures.expected_failed_runs}); "
        f"gap-filling runs {figures.gap_fill_runs}; refused intervals held back {figures.held_back}",
        f"  intervals expected {points.intervals}, present {points.present}, correct {points.correct}",
        f"  points expected {points.points}, missing {points.missing}, wrong {points.wrong}, "
        f"duplicate {points.duplicate}",
        f"  alerts expected {figures.alerts_expected.total()}, sent {figures.alerts_sent.total()} "
        f"({events['alert']} alert(s), {events['recovery']} recovery notice(s))",
    ]
    problems = figures.problems()
    lines += [f"  PROBLEM {problem}" for problem in problems] or [
        "  no loss, no wrong or duplicate point, alerts as expected"
    ]
    return lines
