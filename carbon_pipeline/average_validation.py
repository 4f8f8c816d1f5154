"""What Electricity Maps points must satisfy before they are written as one zone's intervals.

Everything is checked at once (pandera, lazily) and a window with one bad point writes nothing, with the
value, the zone and the interval named (``DataRejected``). A window whose intervals do not each have their
point is not written either (``DataIncomplete``): an interval is never materialized without its point. A
forecast issue is refused whole (``DataRejected``) unless it starts within its hour and reaches the horizon.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from carbon_pipeline.cleanest_windows import VALUE_COLUMN
from carbon_pipeline.electricitymaps.replies import MAX_INTENSITY, IntensityForecast, IntensityPoint
from carbon_pipeline.partitions import HOUR, RegionWindow
from carbon_pipeline.sinks.average_lines import AVERAGE_FIELD
from carbon_pipeline.validation import DataIncomplete, DataRejected, failure_table

SOURCE = "Electricity Maps"


class AverageFrame(pa.DataFrameModel):
    """One zone's points, one per interval: 0 < gCO2eq/kWh < 2000, finite, with how each was obtained."""

    zone: Series[str]
    point_time: Series[pd.DatetimeTZDtype] = pa.Field(dtype_kwargs={"unit": "ns", "tz": "UTC"}, coerce=True)
    gco2eq_per_kwh: Series[float] = pa.Field(gt=0, lt=MAX_INTENSITY)
    is_estimated: Series[bool]
    estimation_method: Series[str] = pa.Field(nullable=True)

    @pa.check(AVERAGE_FIELD, name="finite")
    @classmethod
    def finite(cls, values: Series[float]) -> Series[bool]:
        return Series(np.isfinite(values))

    class Config:
        strict = True
        unique = ("zone", "point_time")


def validate_average(window: RegionWindow, points: Sequence[IntensityPoint]) -> pd.DataFrame:
    """The window's points as an ``AverageFrame``, or the error naming every value, the zone and the interval."""
    frame = average_frame(points)
    starts = pd.DatetimeIndex(window.starts(), tz="UTC").as_unit("ns")
    schema = AverageFrame.to_schema().update_columns(
        {
            # The zone asked for, and the start of one of the window's intervals.
            "zone": {"checks": [pa.Check.isin([window.region])]},
            "point_time": {"checks": [pa.Check.isin(starts)]},
        }
    )
    try:
        validated = schema.validate(frame.drop(columns="raw_value"), lazy=True)
    except pa.errors.SchemaErrors as error:
        raise DataRejected(window, failure_table(error.failure_cases, frame, AVERAGE_FIELD), SOURCE) from None
    missing = starts.difference(pd.DatetimeIndex(validated["point_time"]))
    if len(missing):
        raise DataIncomplete(window, len(starts), [moment.to_pydatetime() for moment in missing])
    return validated.sort_values("point_time", ignore_index=True)


def validate_average_forecast(issue: RegionWindow, forecast: IntensityForecast, horizon_hours: int) -> pd.DataFrame:
    """The forecast fetched in the hour ``issue`` as a forecast frame (``cleanest_windows``' columns), cut to
    ``horizon_hours``; else the error naming zone, issue and rule.

    The client has refused nulls, impossible values and gaps already. What is left is where the forecast
    sits: its first point at the issue's hour or the next one (the simulator's; the real API's is
    UNCONFIRMED), and enough hours for every window length asked for; a short one would leave an automation
    with windows picked from less than it expects.
    """
    first, last = forecast.points[0], forecast.points[-1]
    cases = []
    if not issue.start <= first.time <= issue.start + HOUR:
        cases.append(("point_time", first.time.isoformat(), first.time, f"first point within {HOUR} of the issue"))
    if len(forecast.points) < horizon_hours:
        got = f"{len(forecast.points)} h"
        cases.append(("point_time", got, last.time, f"forecast reaches {horizon_hours} h ahead"))
    if cases:
        table = pd.DataFrame(cases, columns=["column", "value", "point_time", "rule"])
        raise DataRejected(issue, table, f"{SOURCE} forecast")
    points = forecast.points[:horizon_hours]
    issued = pd.Timestamp(issue.start).as_unit("ns")
    times = pd.DatetimeIndex([point.time for point in points]).as_unit("ns")
    return pd.DataFrame(
        {
            "region": issue.region,
            "issue_time": issued,
            "generated_at": pd.Timestamp(forecast.updated_at).as_unit("ns"),
            "point_time": times,
            "horizon_hours": ((times - issued) // pd.Timedelta(HOUR)).astype("int64"),
            VALUE_COLUMN: [point.carbon_intensity for point in points],
        }
    )


def average_frame(points: Sequence[IntensityPoint]) -> pd.DataFrame:
    """The points as rows; the value as sent stays in ``raw_value`` for messages."""
    return pd.DataFrame(
        {
            "zone": pd.Series([point.zone for point in points], dtype=str),
            "point_time": pd.to_datetime([point.time for point in points], utc=True),
            AVERAGE_FIELD: pd.to_numeric(pd.Series([point.carbon_intensity for point in points]), errors="coerce"),
            "is_estimated": pd.Series([point.is_estimated for point in points], dtype=bool),
            "estimation_method": pd.Series([point.estimation_method for point in points], dtype=object),
            "raw_value": pd.Series([point.carbon_intensity for point in points], dtype=object),
        }
    )
