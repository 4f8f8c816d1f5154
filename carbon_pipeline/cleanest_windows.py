"""When to run a load: the cleanest window of its length in a forecast, and how clean the grid is right now.

An automation asks one question per load (a 2 h dishwasher run, a 4 h car charge): of every window of that
length that fits in the newest forecast, which has the lowest mean gCO2/kWh? Means are compared as integer
sums in units of 1e-4 gCO2/kWh, the values' own resolution (``GCO2_KWH_DECIMALS``), so two windows with equal
forecasts are a real tie, broken by the earliest start, rather than decided by float rounding.

Every issue of a frame is laid out as one row of a matrix (``IssueGrid``), so a hundred regions cost a few
array operations, not a hundred Python loops; ``carbon_pipeline.forecast_accuracy`` lays the published values
out on the same grid to judge the windows afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from carbon_pipeline.validation import GCO2_KWH_DECIMALS

PERIOD = timedelta(minutes=5)
# The grid's standing is judged against the coming day, the horizon most loads can wait for.
PERCENTILE_HORIZON = timedelta(hours=24)
UNITS_PER_GCO2_KWH = 10**GCO2_KWH_DECIMALS
PERCENT_DECIMALS = 2
ISSUE_KEYS = ["region", "issue_time"]
VALUE_COLUMN = "carbon_intensity_gco2_kwh"
# Marks windows that run past the end of their issue, so that no minimum ever picks one.
_NO_WINDOW = np.iinfo(np.int64).max


@dataclass(frozen=True)
class CleanestWindow:
    """The cleanest ``window_hours`` of one forecast issue, against running the same load now.

    ``start``/``end`` bound the window, ``end = start + window_hours``; the means are over its
    points. ``cleaner_than_now_percent`` is ``(now - best) / now * 100``. ``current_percentile`` belongs to the
    issue, not the window: it is repeated on each window so that one point answers an automation.
    """

    region: str
    issue_time: datetime
    generated_at: datetime
    window_hours: float
    start: datetime
    end: datetime
    mean_gco2_kwh: float
    now_mean_gco2_kwh: float
    cleaner_than_now_percent: float
    current_percentile: float


class WindowLongerThanForecast(ValueError):
    """A window length does not fit in a forecast: skipping it would leave an automation on an old window."""

    def __init__(
        self, region: str, issue_time: datetime, window_hours: float, span: timedelta, more: int, period: timedelta
    ) -> None:
        self.region = region
        self.issue_time = issue_time
        self.window_hours = window_hours
        self.span = span
        others = f"; {more} more issue(s) are too short as well" if more else ""
        super().__init__(
            f"{region} forecast issued {utc_iso(issue_time)}: a {window_hours:g} h window does not fit in the "
            f"forecast's span of {span / timedelta(hours=1):g} h ({span // period} points){others}"
        )


def utc_iso(moment: datetime) -> str:
    """A moment as messages and string fields spell it: UTC, whole seconds, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def window_points(window_hours: float, period: timedelta = PERIOD) -> int:
    """How many points of ``period`` (WattTime's 5 minutes unless given) a window of ``window_hours`` covers.

    Only whole numbers of periods are accepted: a 1.1 h window would have to start or end inside a period,
    where the forecast says nothing.
    """
    periods = float(window_hours) * (timedelta(hours=1) / period)
    points = round(periods) if math.isfinite(periods) else 0
    if isinstance(window_hours, bool) or points < 1 or not math.isclose(periods, points, abs_tol=1e-9):
        raise ValueError(f"window length {window_hours!r} h is not a positive whole number of {_name(period)} periods")
    return points


def hours_of(points: int, period: timedelta = PERIOD) -> float:
    """The length of a window of ``points`` periods, as it is reported and tagged."""
    return points * period / timedelta(hours=1)


def _name(period: timedelta) -> str:
    """``5-minute`` or ``60-minute``, as messages name a grid."""
    return f"{period // timedelta(minutes=1)}-minute"


def to_units(values: pd.Series) -> np.ndarray:
    """gCO2/kWh in integer 1e-4 gCO2/kWh, where sums are exact; ``rint`` undoes float noise such as 0.99999."""
    return np.rint(values.to_numpy(dtype=float) * UNITS_PER_GCO2_KWH).astype(np.int64)


@dataclass(frozen=True, eq=False)  # eq=False: arrays compare element-wise
class IssueGrid:
    """The rows of a forecast frame laid out as one row per issue and one column per point.

    ``issues`` has one row per issue (``region``, ``issue_time``, ``generated_at``, ``first_point``, ``points``),
    sorted by region and issue time; ``rows``/``columns`` place each frame row in the matrix. Issues shorter
    than the longest are padded at the end, and only ``window_sums`` knows where each one stops. ``period`` is
    the points' spacing: WattTime's 5 minutes, or an hour for a source with an hourly forecast.
    """

    issues: pd.DataFrame
    rows: np.ndarray
    columns: np.ndarray
    period: timedelta = PERIOD

    @classmethod
    def of(cls, points: pd.DataFrame, period: timedelta = PERIOD) -> IssueGrid:
        groups = points.groupby(ISSUE_KEYS, sort=True)
        _require_consecutive(points, groups["point_time"].diff(), period)
        issues = groups.agg(
            generated_at=("generated_at", "first"), first_point=("point_time", "first"), points=("point_time", "size")
        ).reset_index()
        return cls(issues, groups.ngroup().to_numpy(), groups.cumcount().to_numpy(), period)

    @property
    def lengths(self) -> np.ndarray:
        return self.issues["points"].to_numpy()

    def units(self, values: pd.Series) -> np.ndarray:
        """``to_units`` of a column of the frame, one row per issue."""
        matrix = np.zeros((len(self.issues), int(self.lengths.max())), dtype=np.int64)
        matrix[self.rows, self.columns] = to_units(values)
        return matrix

    def window_sums(self, units: np.ndarray, window_hours: float) -> np.ndarray:
        """The sum of every window of ``window_hours``, by issue and start point; starts too late for their
        issue hold the largest int64, so minima and their positions are those of real windows."""
        points = window_points(window_hours, self.period)
        self._require_span(points, window_hours)
        prefix = np.zeros((units.shape[0], units.shape[1] + 1), dtype=np.int64)
        np.cumsum(units, axis=1, out=prefix[:, 1:])
        sums = prefix[:, points:] - prefix[:, :-points]
        sums[np.arange(sums.shape[1]) > (self.lengths - points)[:, None]] = _NO_WINDOW
        return sums

    def _require_span(self, points: int, window_hours: float) -> None:
        short = np.flatnonzero(self.lengths < points)
        if len(short):
            issue = self.issues.iloc[short[0]]
            span = int(issue["points"]) * self.period
            raise WindowLongerThanForecast(
                issue["region"], issue["issue_time"].to_pydatetime(), window_hours, span, len(short) - 1, self.period
            )


def _require_consecutive(points: pd.DataFrame, steps: pd.Series, period: timedelta) -> None:
    """Windows are counted in points, so a missing or repeated point would silently stretch or shrink them."""
    broken = np.flatnonzero((steps.notna() & (steps != period)).to_numpy())
    if len(broken):
        row = points.iloc[broken[0]]
        raise ValueError(
            f"{row['region']} forecast issued {utc_iso(row['issue_time'])}: points must be consecutive {_name(period)} "
            f"periods in time order; {utc_iso(row['point_time'])} comes {steps.iloc[broken[0]]} after the one before"
        )


def cleanest_starts(sums: np.ndarray) -> np.ndarray:
    """The column of each issue's cleanest window: ``argmin`` returns the first minimum, the earliest start."""
    return sums.argmin(axis=1)


def current_percentiles(grid: IssueGrid, units: np.ndarray) -> np.ndarray:
    """Where each issue's first point (now) ranks among the other points of its next 24 hours.

    ``100 * (other points strictly cleaner than now) / (other points)``, over the points within
    ``PERCENTILE_HORIZON`` of the first (all of them in a shorter forecast): 0 when nothing ahead is cleaner,
    100 when everything is. Points as clean as now do not count, so a flat forecast is at 0. A forecast of a
    single point has no other point, and nothing cleaner: 0.
    """
    horizon = min(PERCENTILE_HORIZON // grid.period, units.shape[1])
    considered = np.minimum(grid.lengths, horizon)
    ahead = units[:, 1:horizon]
    inside = np.arange(1, horizon) < considered[:, None]
    cleaner = ((ahead < units[:, :1]) & inside).sum(axis=1)
    others = considered - 1
    return np.where(others > 0, 100 * cleaner / np.maximum(others, 1), 0.0)


def cleanest_windows(
    forecasts: pd.DataFrame, window_hours: Sequence[float], period: timedelta = PERIOD
) -> list[CleanestWindow]:
    """The cleanest window of every length for every issue of a validated forecast frame.

    ``forecasts`` holds one issue or many (the columns of the forecast contract); each issue's points are
    consecutive periods of ``period`` (WattTime's 5 minutes, or an hour for an hourly forecast). The result
    lists issues by region and issue time, and for each issue the lengths in the order given. A length longer
    than any issue raises ``WindowLongerThanForecast``; a frame without issues has no windows.
    """
    if forecasts.empty:
        return []
    grid = IssueGrid.of(forecasts, period)
    units = grid.units(forecasts[VALUE_COLUMN])
    percentiles = current_percentiles(grid, units).tolist()
    lengths = [_LengthResult.of(grid, units, hours) for hours in window_hours]
    issues = grid.issues
    return [
        CleanestWindow(
            region=region,
            issue_time=issue_time.to_pydatetime(),
            generated_at=generated_at.to_pydatetime(),
            window_hours=hours_of(length.points, period),
            start=first_point.to_pydatetime() + length.starts[row] * period,
            end=first_point.to_pydatetime() + (length.starts[row] + length.points) * period,
            mean_gco2_kwh=_mean(length.best[row], length.points),
            now_mean_gco2_kwh=_mean(length.now[row], length.points),
            cleaner_than_now_percent=cleaner_than_now_percent(length.now[row], length.best[row]),
            current_percentile=round(percentiles[row], PERCENT_DECIMALS),
        )
        for row, (region, issue_time, generated_at, first_point) in enumerate(
            zip(issues["region"], issues["issue_time"], issues["generated_at"], issues["first_point"], strict=True)
        )
        for length in lengths
    ]


@dataclass(frozen=True)
class _LengthResult:
    """One window length over every issue, as Python ints: start column, cleanest sum and the sum starting now."""

    points: int
    starts: list[int]
    best: list[int]
    now: list[int]

    @classmethod
    def of(cls, grid: IssueGrid, units: np.ndarray, window_hours: float) -> _LengthResult:
        sums = grid.window_sums(units, window_hours)
        starts = cleanest_starts(sums)
        best = sums[np.arange(len(sums)), starts]
        return cls(window_points(window_hours, grid.period), starts.tolist(), best.tolist(), sums[:, 0].tolist())


def _mean(total_units: int, points: int) -> float:
    return round(total_units / (points * UNITS_PER_GCO2_KWH), GCO2_KWH_DECIMALS)


def cleaner_than_now_percent(now_units: int, best_units: int) -> float:
    """``(now - best) / now * 100`` of two window sums: 0 when starting now is the cleanest, and 0 when now
    emits nothing (values are never negative, so nothing can beat it)."""
    if now_units == 0:
        return 0.0
    return round(100 * (now_units - best_units) / now_units, PERCENT_DECIMALS)
