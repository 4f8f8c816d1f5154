"""What a WattTime forecast must satisfy before a single point of it is written.

A forecast is judged as one issue: an automation that plans a dishwasher run a day ahead needs the whole
horizon, so a forecast with a hole, a short tail or a point off the grid is rejected whole, naming the region,
the issue time, the points expected and the points received. The pandera checks run over every issue of a
region's chunk at once (one validation per day of issues, not 96), and each failure is traced back to its
issue, so one bad issue does not hold back its neighbours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from carbon_pipeline.partitions import INTERVAL, RegionWindow, format_window
from carbon_pipeline.sinks.line_protocol import LBS_PER_MWH_TO_G_PER_KWH
from carbon_pipeline.validation import (
    GCO2_KWH_DECIMALS,
    DataIncomplete,
    DataRejected,
    MoerValues,
    failure_table,
    without_exact_repeats,
)
from carbon_pipeline.watttime.forecasts import Forecast

MISSING_UNITS = "(missing)"
_UTC_NS = {"unit": "ns", "tz": "UTC"}
_NS_PER_SECOND = 1_000_000_000


@dataclass(frozen=True, order=True)
class IssueWindow(RegionWindow):
    """An issue interval of one region: the forecast WattTime generated in it is the partition's data."""

    def describe(self) -> str:
        return f"region {self.region}, forecast issued in {format_window(self.start, self.end)}"


class ForecastNotIssued(DataIncomplete):
    """WattTime's newest forecast predates the issue interval: it has not issued one in it yet. Retryable."""

    def __init__(self, window: IssueWindow, newest: datetime | None) -> None:
        seen = f"newest generated_at {_iso(newest)}" if newest else "none in its archive for this interval"
        Exception.__init__(
            self, f"{window.describe()}: WattTime has not issued a forecast in this interval ({seen}); nothing written"
        )
        self.window = window
        self.expected = 1
        self.missing = (window.start,)


class ForecastFrame(MoerValues):
    """One row per forecast point of one or more issues, as fetched and before conversion."""

    issue_time: Series[pd.DatetimeTZDtype] = pa.Field(dtype_kwargs=_UTC_NS)
    generated_at: Series[pd.DatetimeTZDtype] = pa.Field(dtype_kwargs=_UTC_NS)
    point_time: Series[pd.DatetimeTZDtype] = pa.Field(dtype_kwargs=_UTC_NS)
    horizon_minutes: Series[np.int64] = pa.Field(ge=0)

    class Config:
        strict = True
        unique = ("region", "issue_time", "point_time")


@dataclass(frozen=True)
class CheckedForecasts:
    """A chunk's issues after validation: the frame of the good ones, and why each other one was refused."""

    frame: pd.DataFrame
    rejected: tuple[DataRejected, ...]

    @property
    def issue_starts(self) -> list[datetime]:
        return sorted({moment.to_pydatetime() for moment in self.frame["issue_time"].unique()})


def expected_points(horizon_hours: int, period_seconds: int) -> int:
    """Points of a complete forecast: 288 for 24 h at WattTime's 5-minute period."""
    return max(1, horizon_hours * 3600 // period_seconds)


def forecast_frame(region: str, issued: Sequence[tuple[datetime, Forecast]]) -> pd.DataFrame:
    """Stack (issue interval start, forecast) pairs into a ``ForecastFrame``-shaped frame.

    Built from arrays rather than one small frame per issue: a 30-day backfill is 2,880 issues.
    """
    if not issued:
        raise ValueError(f"region {region}: no forecast to stack")
    sizes = [len(forecast.frame) for _, forecast in issued]
    frames = [forecast.frame for _, forecast in issued]
    point_time = pd.to_datetime(_stacked(frames, "point_time"), utc=True).astype("datetime64[ns, UTC]")
    generated_at = _repeated([forecast.generated_at for _, forecast in issued], sizes)
    first_points = _repeated([_first_point(forecast) for _, forecast in issued], sizes)
    return pd.DataFrame(
        {
            "region": region,
            "issue_time": _repeated([start for start, _ in issued], sizes),
            "generated_at": generated_at,
            "point_time": point_time,
            "horizon_minutes": ((point_time - first_points).dt.total_seconds() // 60).astype(np.int64),
            "moer_lbs_per_mwh": pd.to_numeric(_stacked(frames, "value"), errors="coerce").astype(float),
            "units": np.repeat([forecast.units or MISSING_UNITS for _, forecast in issued], sizes),
            "model_date": np.repeat(np.array([forecast.model_date for _, forecast in issued], dtype=object), sizes),
            "raw_value": _stacked(frames, "raw_value"),
            "period_seconds": np.repeat([forecast.period_seconds or 0 for _, forecast in issued], sizes),
        }
    )


def _stacked(frames: Sequence[pd.DataFrame], column: str) -> pd.Series:
    return pd.concat([frame[column] for frame in frames], ignore_index=True)


def _first_point(forecast: Forecast) -> datetime:
    """Where a complete forecast starts: the data period its issue time falls in."""
    period = forecast.period_seconds or 1
    epoch = forecast.generated_at.timestamp()
    return forecast.generated_at - timedelta(seconds=epoch % period)


def _repeated(values: Sequence[datetime], sizes: Sequence[int]) -> pd.Series:
    return pd.Series(pd.DatetimeIndex(values, tz="UTC").repeat(sizes), dtype="datetime64[ns, UTC]")


def check_forecasts(region: str, frame: pd.DataFrame, horizon_hours: int) -> CheckedForecasts:
    """Every rule over every issue of ``frame`` at once; the issues that pass come back converted to gCO2/kWh.

    A point an issue holds twice, identically, is kept once with a warning, as for measurements; two copies
    that differ refuse their issue.
    """
    if not frame.empty:
        frame = without_exact_repeats(_issues_described(region, frame), frame, key=("issue_time", "point_time"))
    refused: dict[datetime, pd.DataFrame] = {}
    schema_failures = _schema_failures(frame)
    for issue, cases in _per_issue(frame, schema_failures).items():
        refused[issue] = cases
    for issue, cases in _shape_failures(frame, horizon_hours).items():
        refused[issue] = pd.concat([refused[issue], cases]) if issue in refused else cases
    good = frame[~frame["issue_time"].isin(list(refused))]
    grams = (good["moer_lbs_per_mwh"] * LBS_PER_MWH_TO_G_PER_KWH).round(GCO2_KWH_DECIMALS)
    converted = good.drop(columns=["raw_value", "units", "period_seconds"]).assign(carbon_intensity_gco2_kwh=grams)
    rejected = tuple(
        DataRejected(IssueWindow(region, issue, issue + INTERVAL), cases.reset_index(drop=True))
        for issue, cases in sorted(refused.items())
    )
    return CheckedForecasts(converted.reset_index(drop=True), rejected)


def _issues_described(region: str, frame: pd.DataFrame) -> str:
    first, last = frame["issue_time"].min(), frame["issue_time"].max()
    return f"region {region}, forecasts issued in {format_window(first, last + INTERVAL)}"


def _schema_failures(frame: pd.DataFrame) -> pd.DataFrame:
    try:
        ForecastFrame.validate(frame.drop(columns=["raw_value", "period_seconds"]), lazy=True)
    except pa.errors.SchemaErrors as error:
        return error.failure_cases
    return pd.DataFrame(columns=["index"])


def _per_issue(frame: pd.DataFrame, failure_cases: pd.DataFrame) -> dict[datetime, pd.DataFrame]:
    """pandera's failure cases, grouped by the issue each offending row belongs to, as the UI shows them."""
    cases = failure_cases[failure_cases["index"].notna()]
    if cases.empty:
        return {}
    table = failure_table(cases, frame)
    issues = frame["issue_time"].iloc[cases["index"].astype(int)].reset_index(drop=True)
    return {issue.to_pydatetime(): rows for issue, rows in table.groupby(issues, sort=True)}


def _shape_failures(frame: pd.DataFrame, horizon_hours: int) -> dict[datetime, pd.DataFrame]:
    """Issues not shaped like a whole forecast: the grid, the first point, the order and the horizon.

    Only the issues ``_misshapen`` finds are looked at one by one, for the rule to name: a month's 2,880
    whole issues cost one pass over the frame instead of 2,880 small frames.
    """
    failures: dict[datetime, pd.DataFrame] = {}
    suspects = frame[frame["issue_time"].isin(_misshapen(frame, horizon_hours))]
    for issue, points in suspects.groupby("issue_time", sort=True):
        problem = _shape_problem(points, horizon_hours)
        if problem is not None:
            failures[pd.Timestamp(issue).to_pydatetime()] = problem
    return failures


def _misshapen(frame: pd.DataFrame, horizon_hours: int) -> pd.Series:
    """The issue times of issues that are not exactly ``expected_points`` points, one a period from the period
    their ``generated_at`` falls in, with ``generated_at`` inside the issue interval: every issue
    ``_shape_problem`` would refuse, and only those."""
    period_seconds = frame["period_seconds"].to_numpy(np.int64)
    step = np.where(period_seconds > 0, period_seconds, 1) * _NS_PER_SECOND
    issue = _nanoseconds(frame["issue_time"])
    generated_at = _nanoseconds(frame["generated_at"])
    issues = frame.groupby("issue_time", sort=False)
    position = issues.cumcount().to_numpy(np.int64)
    size = issues["issue_time"].transform("size").to_numpy(np.int64)
    expected = np.maximum(1, horizon_hours * 3600 // np.where(period_seconds > 0, period_seconds, 1))
    whole = (
        (period_seconds > 0)
        & (issue <= generated_at)
        & (generated_at < issue + INTERVAL // pd.Timedelta(nanoseconds=1))
        & (size == expected)
        & (_nanoseconds(frame["point_time"]) == generated_at - generated_at % step + position * step)
    )
    return frame["issue_time"][~whole].drop_duplicates()


def _nanoseconds(times: pd.Series) -> np.ndarray:
    return times.to_numpy("datetime64[ns]").astype(np.int64)


def _shape_problem(points: pd.DataFrame, horizon_hours: int) -> pd.DataFrame | None:
    period = int(points["period_seconds"].iloc[0])
    generated_at = points["generated_at"].iloc[0]
    if period <= 0:
        return _rule(generated_at, "meta.data_point_period_seconds", None, "WattTime must state the data period")
    issue = points["issue_time"].iloc[0]
    if not issue <= generated_at < issue + INTERVAL:
        return _rule(generated_at, "generated_at", generated_at, f"inside the issue interval {_iso(issue)} + 15 min")
    times = points["point_time"]
    step = pd.Timedelta(seconds=period)
    first = generated_at.floor(step)
    off_grid = times[(times - first) % step != pd.Timedelta(0)]
    if len(off_grid):
        return _rule(off_grid.iloc[0], "point_time", off_grid.iloc[0], f"on the {period} s data period grid")
    if times.iloc[0] != first:
        return _rule(times.iloc[0], "point_time", times.iloc[0], f"first point at the issue's period {_iso(first)}")
    gaps = times.diff().iloc[1:]
    if (gaps <= pd.Timedelta(0)).any():
        moment = times.iloc[1:][gaps <= pd.Timedelta(0)].iloc[0]
        return _rule(moment, "point_time", moment, "strictly increasing")
    expected = expected_points(horizon_hours, period)
    if len(times) != expected or (gaps != step).any():
        end = first + expected * step
        missing = pd.date_range(first, end, freq=step, inclusive="left").difference(pd.DatetimeIndex(times))
        where = f", first missing {_iso(missing[0])}" if len(missing) else ""
        return _rule(
            first,
            "forecast",
            f"{len(times)} points",
            f"horizon complete: {expected} points over {horizon_hours} h{where}",
        )
    return None


def _rule(moment: pd.Timestamp, column: str, value: object, rule: str) -> pd.DataFrame:
    shown = _iso(value) if isinstance(value, datetime) else repr(value) if not isinstance(value, str) else value
    return pd.DataFrame({"point_time": [_iso(moment)], "column": [column], "value": [shown], "rule": [rule]})


def _iso(moment: datetime) -> str:
    return pd.Timestamp(moment).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
