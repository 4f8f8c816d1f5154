"""What a WattTime MOER frame must satisfy before a single point of it is written.

The old service wrote whatever arrived, including ``None`` turned into zero. Here a frame is checked
whole (pandera, lazily, so every failure is reported at once) and for completeness; only a frame that
passes both is converted and handed to a sink, so a rejected frame writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import dagster as dg
import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from carbon_pipeline.partitions import RegionWindow
from carbon_pipeline.regions import REGION_PATTERN
from carbon_pipeline.sinks.line_protocol import LBS_PER_MWH_TO_G_PER_KWH
from carbon_pipeline.watttime.replies import HistoricalChunk

EXPECTED_UNITS = "lbs_co2_per_mwh"
# Physical ceiling for a marginal emission rate. The dirtiest fossil units on any grid, lignite and
# old oil or diesel peakers, emit roughly 2,600-3,300 lbs CO2/MWh (heat rates up to ~20,000 Btu/kWh at
# ~161-215 lbs CO2/MMBtu). 4,000 leaves headroom for real extremes while catching sentinel values
# such as 9999/99999 and gross unit mix-ups.
MAX_MOER_LBS_PER_MWH = 4000.0
# Milligram resolution: far finer than any MOER model, without float noise such as 365.68616869400006.
GCO2_KWH_DECIMALS = 4
FAILURE_MESSAGE_ROWS = 5
# WattTime documents a publication lag from under a minute to "up to a few hours" per region; an interval with
# not one point that much (3 h), and as long again, after its end is overdue rather than waiting on the lag.
WATTTIME_PUBLICATION_LAG = timedelta(hours=3)
OVERDUE_MARGIN = timedelta(hours=3)
# Dagster's logger: inside a run its messages reach the run's event log, outside it they are plain logging.
_logger = dg.get_dagster_logger(__name__)


class MoerValues(pa.DataFrameModel):
    """What every frame of WattTime MOER values must hold, published or forecast."""

    region: Series[str] = pa.Field(str_matches=REGION_PATTERN.pattern)
    moer_lbs_per_mwh: Series[float] = pa.Field(ge=0.0, le=MAX_MOER_LBS_PER_MWH)
    units: Series[str] = pa.Field(isin=[EXPECTED_UNITS])
    model_date: Series[str] = pa.Field(nullable=True)

    @pa.check("moer_lbs_per_mwh", name="finite")
    @classmethod
    def finite(cls, values: Series[float]) -> Series[bool]:
        return Series(np.isfinite(values))


class MoerFrame(MoerValues):
    """One row per published MOER point of one WattTime region, as fetched and before conversion."""

    point_time: Series[pd.DatetimeTZDtype] = pa.Field(dtype_kwargs={"unit": "ns", "tz": "UTC"}, coerce=True)
    imputed: Series[pd.BooleanDtype] = pa.Field(nullable=True)

    class Config:
        strict = True
        unique = ("region", "point_time")


class DataRejected(Exception):
    """WattTime returned data that must not be written (null, out of range, duplicate, misplaced...).

    Not retryable: the same request returns the same data. ``failure_cases`` holds one row per
    offending value for the UI.
    """

    def __init__(self, window: RegionWindow, failure_cases: pd.DataFrame, source: str = "WattTime") -> None:
        self.window = window
        self.failure_cases = failure_cases
        preview = "; ".join(_describe_failure(row) for row in failure_cases.head(FAILURE_MESSAGE_ROWS).itertuples())
        more = len(failure_cases) - FAILURE_MESSAGE_ROWS
        suffix = f"; and {more} more" if more > 0 else ""
        super().__init__(
            f"{window.describe()}: {source} data rejected, nothing written: {len(failure_cases)} "
            f"failure(s): {preview}{suffix}"
        )


class DataIncomplete(Exception):
    """Some expected points are absent. Retryable: WattTime publishes with a lag and fills gaps later."""

    def __init__(
        self, window: RegionWindow, expected: int, missing: Sequence[datetime], published_until: datetime | None = None
    ) -> None:
        self.window = window
        self.expected = expected
        self.missing = tuple(missing)
        # Only the newest points missing means WattTime's publication lag; a hole before a published point is a gap.
        lagging = published_until is None or min(missing) > published_until
        state = "not yet published" if lagging else "gap in WattTime's data"
        present = expected - len(missing)
        super().__init__(
            f"{window.describe()}: {state}: {present} of {expected} points (missing {_listed(missing)}); "
            "nothing written, retry later"
        )


class DataLongOverdue(DataIncomplete):
    """No point at all for an interval WattTime should have published long ago: not its usual lag.

    Still retryable (WattTime fills gaps late, and the gap filler asks again), but worth a different word:
    "not yet published" would send the operator waiting for data that is overdue.
    """

    def __init__(self, window: RegionWindow, expected: int, missing: Sequence[datetime], expected_by: datetime) -> None:
        super().__init__(window, expected, missing)
        self.expected_by = expected_by
        self.args = (
            f"WattTime returned no points for {window.describe()}, published long ago (expected by "
            f"{_iso(expected_by)}): 0 of {expected} points; nothing written, retry later",
        )


def _listed(moments: Sequence[datetime]) -> str:
    shown = ", ".join(_iso(moment) for moment in moments[:FAILURE_MESSAGE_ROWS])
    more = f" and {len(moments) - FAILURE_MESSAGE_ROWS} more" if len(moments) > FAILURE_MESSAGE_ROWS else ""
    return shown + more


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def moer_frame(window: RegionWindow, chunks: Sequence[HistoricalChunk]) -> pd.DataFrame:
    """Stack the chunks of one window into a ``MoerFrame``-shaped frame, keeping each chunk's metadata per point."""
    frame = pd.concat([_chunk_frame(window.region, chunk) for chunk in chunks], ignore_index=True)
    return frame.astype({"region": str, "units": str, "moer_lbs_per_mwh": float, "imputed": "boolean"})


def _chunk_frame(region: str, chunk: HistoricalChunk) -> pd.DataFrame:
    points = chunk.frame
    return pd.DataFrame(
        {
            "region": region,
            "point_time": points["point_time"],
            "moer_lbs_per_mwh": points["value"],
            "units": chunk.units or "(missing)",
            "model_date": chunk.model_date,
            "imputed": points["imputed"],
            "raw_value": points["raw_value"],
        }
    )


def without_exact_repeats(where: str, frame: pd.DataFrame, key: Sequence[str] = ("point_time",)) -> pd.DataFrame:
    """The frame with each point WattTime sent more than once, identically, kept once, and a warning saying so.

    An identical copy (same ``key``, value as sent, units, model and marker) says nothing new, so it need not
    cost the interval; copies that differ in anything are left for the schema's uniqueness rule to reject,
    since which of them is right cannot be told. ``where`` (region and interval) starts the warning; ``key``
    is what makes a point one point: its time, or for forecasts its issue and time.
    """
    columns = list(key)
    if not frame.duplicated(columns).any():
        return frame
    # Numbers compare by value (1 and 1.0 are one JSON number), anything else as sent: "n/a" is not null.
    as_sent = frame.drop(columns="raw_value").assign(raw_value=frame["raw_value"].map(_unless_number))
    repeats = as_sent.duplicated(keep=False)
    if not repeats.any():
        return frame
    copies = frame.loc[repeats].groupby(columns, sort=True).size()
    shown = ", ".join(
        f"{_point_named(columns, point)} ({count} copies)" for point, count in copies.head(FAILURE_MESSAGE_ROWS).items()
    )
    more = f" and {len(copies) - FAILURE_MESSAGE_ROWS} more" if len(copies) > FAILURE_MESSAGE_ROWS else ""
    _logger.warning(
        "%s: WattTime sent %d point(s) more than once with the same value; kept one of each: %s%s",
        where,
        len(copies),
        shown,
        more,
    )
    return frame.loc[~as_sent.duplicated(keep="first")].reset_index(drop=True)


def _point_named(columns: Sequence[str], point: object) -> str:
    """A repeated point as the warning names it: its time, or each key column with its time."""
    if len(columns) == 1:
        return _iso(point)  # type: ignore[arg-type]
    return " ".join(f"{column} {_iso(moment)}" for column, moment in zip(columns, point, strict=True))  # type: ignore[call-overload]


def _unless_number(raw: object) -> str | None:
    return None if type(raw) in (int, float) else repr(raw)


def validate_moer_frame(window: RegionWindow, frame: pd.DataFrame) -> pd.DataFrame:
    """Check every rule at once and return the frame with its conversion to gCO2/kWh added.

    Exact repeats of a point are dropped first (``without_exact_repeats``); every other rule is pandera's.
    """
    frame = without_exact_repeats(window.describe(), frame)
    schema = MoerFrame.to_schema().update_column(
        "point_time",
        checks=[pa.Check.in_range(pd.Timestamp(window.start), pd.Timestamp(window.end), include_max=False)],
    )
    try:
        validated = schema.validate(frame.drop(columns="raw_value"), lazy=True)
    except pa.errors.SchemaErrors as error:
        raise DataRejected(window, failure_table(error.failure_cases, frame)) from None
    grams = (validated["moer_lbs_per_mwh"] * LBS_PER_MWH_TO_G_PER_KWH).round(GCO2_KWH_DECIMALS)
    return validated.assign(carbon_intensity_gco2_kwh=grams)


def failure_table(
    failure_cases: pd.DataFrame, frame: pd.DataFrame, value_column: str = "moer_lbs_per_mwh"
) -> pd.DataFrame:
    """One row per failure with the offending value as WattTime sent it, its timestamp and the rule broken.

    ``value_column`` is the column holding WattTime's value, shown as sent (``raw_value``) rather than as parsed.
    """
    cases = failure_cases[failure_cases["index"].notna()]
    positions = cases["index"].astype(int)
    return pd.DataFrame(
        {
            "point_time": [_iso(moment) for moment in frame["point_time"].iloc[positions]],
            "column": cases["column"].to_numpy(),
            "value": [_display(value) for value in _sent_values(cases, frame, positions, value_column)],
            "rule": cases["check"].astype(str).to_numpy(),
        }
    ).reset_index(drop=True)


def _sent_values(cases: pd.DataFrame, frame: pd.DataFrame, positions: pd.Series, value_column: str) -> list[object]:
    raw = frame["raw_value"].iloc[positions].tolist()
    return [
        sent if column == value_column else case
        for column, case, sent in zip(cases["column"], cases["failure_case"], raw, strict=True)
    ]


def _display(value: object) -> str:
    return _iso(value) if isinstance(value, datetime) else repr(value)


def _describe_failure(row: object) -> str:
    return f"{row.column} {row.value} at {row.point_time} fails {row.rule}"  # type: ignore[attr-defined]


def require_complete(
    window: RegionWindow, frame: pd.DataFrame, period_seconds: int | None, now: datetime | None = None
) -> None:
    """Refuse to mark intervals materialized while any of their points is still unpublished.

    `now` (default: the clock) tells a reply that is empty because of WattTime's lag from one that is empty
    long after the interval should have been published (`DataLongOverdue`).
    """
    if period_seconds is None:
        if frame.empty:
            _raise_if_overdue(window, window.interval_count, [window.start], now)
            raise DataIncomplete(window, window.interval_count, [window.start])
        raise DataRejected(
            window,
            rule_failure(
                frame["point_time"].min(), "meta.data_point_period_seconds", None, "WattTime must state the data period"
            ),
        )
    expected = expected_point_times(window, period_seconds)
    present = pd.DatetimeIndex(frame["point_time"])
    off_grid = present.difference(expected)
    if len(off_grid):
        raise DataRejected(
            window, rule_failure(off_grid[0], "point_time", off_grid[0], f"on the {period_seconds} s data period grid")
        )
    missing = expected.difference(present)
    if len(missing) and present.empty:
        _raise_if_overdue(window, len(expected), list(missing), now)
    if len(missing):
        raise DataIncomplete(
            window, len(expected), list(missing), published_until=present.max() if len(present) else None
        )


def _raise_if_overdue(window: RegionWindow, expected: int, missing: Sequence[datetime], now: datetime | None) -> None:
    expected_by = window.end + WATTTIME_PUBLICATION_LAG + OVERDUE_MARGIN
    if (now or datetime.now(UTC)) >= expected_by:
        raise DataLongOverdue(window, expected, missing, expected_by)


def expected_point_times(window: RegionWindow, period_seconds: int) -> pd.DatetimeIndex:
    """Period-aligned timestamps inside the window: 3 per interval for 5-minute regions, 0 or 1 for hourly ones."""
    period = timedelta(seconds=period_seconds)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    first = epoch + -(-(window.start - epoch) // period) * period
    count = max(0, -(-(window.end - first) // period))
    return pd.date_range(first, periods=count, freq=period, unit="ns")


def rule_failure(moment: datetime, column: str, value: object, rule: str) -> pd.DataFrame:
    """A failure no schema column holds (a count, a meta field), in ``failure_table``'s shape."""
    return pd.DataFrame({"point_time": [_iso(moment)], "column": [column], "value": [_display(value)], "rule": [rule]})


def data_period(window: RegionWindow, chunks: Sequence[HistoricalChunk]) -> int | None:
    """The one data period WattTime reported for this window; a mix would make completeness meaningless."""
    periods = sorted({chunk.period_seconds for chunk in chunks if chunk.period_seconds is not None})
    if len(periods) > 1:
        raise DataRejected(
            window, rule_failure(window.start, "meta.data_point_period_seconds", periods, "one data period per region")
        )
    return periods[0] if periods else None
