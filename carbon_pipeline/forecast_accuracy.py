"""How good one day's forecasts of a region turned out, once WattTime has published what really happened.

Two questions, per UTC day of issues: how far off were the forecast values, by how far ahead they looked
(horizon buckets), and would an automation that trusted each issue's cleanest window have run within 5 % of
the truly cleanest one? Forecast and published values are paired by ``point_time`` in one merge, and both are
laid out on ``carbon_pipeline.cleanest_windows``'s issue grid, so a day of 96 issues of 72 hours costs a few
array operations. Nothing is judged on a partial truth: a forecast point without its published value is
reported by ``missing_actuals`` and refused by ``forecast_accuracy``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd

from carbon_pipeline.cleanest_windows import (
    UNITS_PER_GCO2_KWH,
    VALUE_COLUMN,
    IssueGrid,
    cleanest_starts,
    hours_of,
    to_units,
    utc_iso,
    window_points,
)
from carbon_pipeline.validation import GCO2_KWH_DECIMALS

ACTUAL_COLUMN = "actual_gco2_kwh"
# A chosen window "hits" when its published mean is at most this much above the truly cleanest window's.
HIT_TOLERANCE_PERCENT = 5
SHARE_DECIMALS = 4


@dataclass(frozen=True)
class HorizonBucket:
    """Forecast points with ``lo <= horizon_minutes < hi``; the last bucket also takes ``hi`` itself."""

    label: str
    lo: int
    hi: int


HORIZON_BUCKETS = (
    HorizonBucket("0-1h", 0, 60),
    HorizonBucket("1-6h", 60, 360),
    HorizonBucket("6-24h", 360, 1440),
    HorizonBucket("24-72h", 1440, 4320),
)


@dataclass(frozen=True)
class HorizonError:
    """Errors of the points of one horizon bucket, in gCO2/kWh; ``bias`` is the mean of forecast - actual."""

    bucket: str
    points: int
    issues: int
    mae_gco2_kwh: float
    rmse_gco2_kwh: float
    bias_gco2_kwh: float


@dataclass(frozen=True)
class WindowHitShare:
    """The share of issues whose cleanest window of ``window_hours`` was, in published values, within
    ``HIT_TOLERANCE_PERCENT`` of the truly cleanest window of that length over the same forecast span."""

    window_hours: float
    issues: int
    within_5_percent_share: float


@dataclass(frozen=True)
class ForecastAccuracy:
    """One region's forecasts issued on one UTC day, judged: buckets without points are left out."""

    region: str
    day: date
    issues: int
    horizon_errors: tuple[HorizonError, ...]
    window_hit_shares: tuple[WindowHitShare, ...]


@dataclass(frozen=True)
class MissingActuals:
    """Forecast point times whose published value is not there yet, for a "waiting for ..." failure."""

    region: str
    day: date
    count: int
    first: datetime
    last: datetime

    @property
    def message(self) -> str:
        return (
            f"{self.region} forecasts issued {self.day.isoformat()}: waiting for {self.count} published point(s) "
            f"from {utc_iso(self.first)} to {utc_iso(self.last)}"
        )


class ActualsMissing(Exception):
    """Accuracy was asked for before every forecast point was published; retryable once WattTime catches up."""

    def __init__(self, missing: MissingActuals) -> None:
        super().__init__(missing.message)
        self.missing = missing


def missing_actuals(forecasts: pd.DataFrame, actuals: pd.DataFrame, *, region: str, day: date) -> MissingActuals | None:
    """Which distinct forecast point times of the day's issues have no published value; None when none."""
    return _missing(_paired(forecasts, actuals, region=region, day=day), region, day)


def forecast_accuracy(
    forecasts: pd.DataFrame, actuals: pd.DataFrame, *, region: str, day: date, window_hours: Sequence[float]
) -> ForecastAccuracy:
    """Judge ``region``'s forecasts issued on ``day`` against the published values.

    ``forecasts`` is the validated forecast frame (other regions and days are refused, not filtered, since
    they mean the caller picked the wrong rows); ``actuals`` is the carbon_intensity frame, of which only
    ``region``'s rows are used. Raises ``ActualsMissing`` when a forecast point has no published value yet.
    """
    paired = _paired(forecasts, actuals, region=region, day=day)
    missing = _missing(paired, region, day)
    if missing is not None:
        raise ActualsMissing(missing)
    grid = IssueGrid.of(paired)
    forecast_units = grid.units(paired[VALUE_COLUMN])
    actual_units = grid.units(paired[ACTUAL_COLUMN])
    return ForecastAccuracy(
        region=region,
        day=day,
        issues=len(grid.issues),
        horizon_errors=horizon_errors(paired, grid),
        window_hit_shares=tuple(window_hit_share(grid, forecast_units, actual_units, hours) for hours in window_hours),
    )


def _paired(forecasts: pd.DataFrame, actuals: pd.DataFrame, *, region: str, day: date) -> pd.DataFrame:
    """The day's forecast rows, each with its published value (NaN while missing) as ``actual_gco2_kwh``."""
    _require_region_and_day(forecasts, region, day)
    published = actuals.loc[actuals["region"] == region, ["point_time", VALUE_COLUMN]]
    return forecasts.merge(
        published.rename(columns={VALUE_COLUMN: ACTUAL_COLUMN}), on="point_time", how="left", validate="many_to_one"
    )


def day_start(day: date) -> datetime:
    """00:00 UTC of ``day``: days are UTC days, like the partitions."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _require_region_and_day(forecasts: pd.DataFrame, region: str, day: date) -> None:
    start = day_start(day)
    outside = (forecasts["region"] != region) | ~forecasts["issue_time"].between(
        start, start + timedelta(days=1), inclusive="left"
    )
    if forecasts.empty or outside.any():
        found = "none" if forecasts.empty else f"{int(outside.sum())} row(s) of other regions or days"
        raise ValueError(f"expected the forecasts of {region} issued on {day.isoformat()}, found {found}")


def _missing(paired: pd.DataFrame, region: str, day: date) -> MissingActuals | None:
    times = paired.loc[paired[ACTUAL_COLUMN].isna(), "point_time"].drop_duplicates()
    if times.empty:
        return None
    return MissingActuals(region, day, len(times), times.min().to_pydatetime(), times.max().to_pydatetime())


def horizon_errors(paired: pd.DataFrame, grid: IssueGrid) -> tuple[HorizonError, ...]:
    """MAE, RMSE and bias per horizon bucket, from errors in integer 1e-4 gCO2/kWh (the values' resolution)."""
    errors = to_units(paired[VALUE_COLUMN]) - to_units(paired[ACTUAL_COLUMN])
    buckets = horizon_bucket_indices(paired["horizon_minutes"].to_numpy())
    count = len(HORIZON_BUCKETS)
    points = np.bincount(buckets, minlength=count)
    absolute = np.bincount(buckets, weights=np.abs(errors), minlength=count)
    signed = np.bincount(buckets, weights=errors, minlength=count)
    squared = np.bincount(buckets, weights=errors.astype(float) ** 2, minlength=count)
    issues = np.bincount(np.unique(grid.rows * count + buckets) % count, minlength=count)
    return tuple(
        HorizonError(
            bucket=bucket.label,
            points=int(points[index]),
            issues=int(issues[index]),
            mae_gco2_kwh=_grams(absolute[index] / points[index]),
            rmse_gco2_kwh=_grams(np.sqrt(squared[index] / points[index])),
            bias_gco2_kwh=_grams(signed[index] / points[index]),
        )
        for index, bucket in enumerate(HORIZON_BUCKETS)
        if points[index]
    )


def horizon_bucket_indices(horizon_minutes: np.ndarray) -> np.ndarray:
    """Each point's index in ``HORIZON_BUCKETS``; a horizon outside them is refused rather than dropped."""
    edges = np.array([bucket.lo for bucket in HORIZON_BUCKETS])
    indices = np.searchsorted(edges, horizon_minutes, side="right") - 1
    last = HORIZON_BUCKETS[-1]
    outside = (horizon_minutes < edges[0]) | (horizon_minutes > last.hi)
    if outside.any():
        raise ValueError(
            f"horizon_minutes {int(horizon_minutes[outside][0])} is outside {edges[0]}..{last.hi}, "
            "the horizons WattTime forecasts"
        )
    return indices


def window_hit_share(
    grid: IssueGrid, forecast_units: np.ndarray, actual_units: np.ndarray, window_hours: float
) -> WindowHitShare:
    """Compared in integers: ``100 * actual(chosen) <= 105 * actual(best)``, so a hit at exactly 5 % counts."""
    chosen = cleanest_starts(grid.window_sums(forecast_units, window_hours))
    actual = grid.window_sums(actual_units, window_hours)
    chosen_actual = actual[np.arange(len(actual)), chosen]
    hits = 100 * chosen_actual <= (100 + HIT_TOLERANCE_PERCENT) * actual.min(axis=1)
    return WindowHitShare(
        window_hours=hours_of(window_points(window_hours)),
        issues=len(hits),
        within_5_percent_share=round(float(hits.mean()), SHARE_DECIMALS),
    )


def _grams(units: float) -> float:
    return round(float(units) / UNITS_PER_GCO2_KWH, GCO2_KWH_DECIMALS)
