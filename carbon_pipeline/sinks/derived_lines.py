"""Line protocol of what is derived from forecasts: cleanest windows and forecast accuracy.

Both measurements share ``carbon_intensity``'s series tags (``series_prefix``, same order and escaping) and
whole-second timestamps, and add one tag of their own, last:

- ``carbon_cleanest_window``: tag ``window_hours``; one point per region, issue and window length, at the
  issue time, so re-materializing an issue overwrites its points and the newest issue is the last point.
  Times an automation compares with "now" are integer Unix seconds (``window_start``, ``window_end``,
  ``generated_at``); ``window_start_iso`` is the same start as a string for templates that want one.
- ``carbon_forecast_accuracy``: one point per region, day and horizon bucket (tag ``horizon_bucket``, fields
  ``mae_gco2_kwh``, ``rmse_gco2_kwh``, ``bias_gco2_kwh``, ``points``, ``issues``) and one per region, day and
  window length (tag ``window_hours``, fields ``within_5_percent_share``, ``issues``), at the day's start
  (00:00 UTC). A point has one of the two tags, never both, so ``WHERE horizon_bucket = '1-6h'`` or
  ``WHERE window_hours = '2'`` selects one kind.

Floats are written with ``repr`` (always with a decimal point or exponent, so a field never changes type);
counts and Unix seconds as integers (``i``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from carbon_pipeline.cleanest_windows import CleanestWindow, utc_iso
from carbon_pipeline.forecast_accuracy import ForecastAccuracy, day_start
from carbon_pipeline.sinks.line_protocol import escape_string_field, escape_tag, series_prefix

CLEANEST_WINDOW_MEASUREMENT = "carbon_cleanest_window"
FORECAST_ACCURACY_MEASUREMENT = "carbon_forecast_accuracy"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def window_hours_tag(window_hours: float) -> str:
    """The tag value of a window length: ``2`` for 2 h (what a query names), ``0.5`` for 30 minutes."""
    return str(int(window_hours)) if float(window_hours).is_integer() else repr(float(window_hours))


def cleanest_window_lines(windows: Iterable[CleanestWindow], *, signal_type: str, source: str) -> list[str]:
    """One line per window, at its issue time."""
    return [
        f"{series_prefix(window.region, signal_type, source, CLEANEST_WINDOW_MEASUREMENT)}"
        f",window_hours={escape_tag(window_hours_tag(window.window_hours))} "
        f"window_start={_seconds(window.start)}i,window_end={_seconds(window.end)}i,"
        f"window_start_iso={escape_string_field(utc_iso(window.start))},"
        f"mean_gco2_kwh={float(window.mean_gco2_kwh)!r},now_gco2_kwh={float(window.now_mean_gco2_kwh)!r},"
        f"cleaner_than_now_percent={float(window.cleaner_than_now_percent)!r},"
        f"current_percentile={float(window.current_percentile)!r},generated_at={_seconds(window.generated_at)}i "
        f"{_seconds(window.issue_time)}"
        for window in windows
    ]


def forecast_accuracy_lines(accuracy: ForecastAccuracy, *, signal_type: str, source: str) -> list[str]:
    """One line per horizon bucket with points, then one per window length, at the day's start."""
    prefix = series_prefix(accuracy.region, signal_type, source, FORECAST_ACCURACY_MEASUREMENT)
    second = _seconds(day_start(accuracy.day))
    errors = [
        f"{prefix},horizon_bucket={escape_tag(error.bucket)} mae_gco2_kwh={float(error.mae_gco2_kwh)!r},"
        f"rmse_gco2_kwh={float(error.rmse_gco2_kwh)!r},bias_gco2_kwh={float(error.bias_gco2_kwh)!r},"
        f"points={error.points}i,issues={error.issues}i {second}"
        for error in accuracy.horizon_errors
    ]
    shares = [
        f"{prefix},window_hours={escape_tag(window_hours_tag(share.window_hours))} "
        f"within_5_percent_share={float(share.within_5_percent_share)!r},issues={share.issues}i {second}"
        for share in accuracy.window_hit_shares
    ]
    return errors + shares


def _seconds(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(seconds=1)
