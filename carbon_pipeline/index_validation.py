"""What a WattTime signal index reply must satisfy before its point is written for an interval.

The index is a rank, 0 (cleanest) to 100 (dirtiest), of the current 5-minute period: one reply is one point,
and a point is only worth storing for the interval it was asked for. Everything is checked at once (pandera,
lazily) and a refused reply writes nothing, with value, region and interval named (``DataRejected``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from carbon_pipeline.forecast_validation import MISSING_UNITS
from carbon_pipeline.partitions import RegionWindow
from carbon_pipeline.regions import REGION_PATTERN
from carbon_pipeline.validation import DataRejected, failure_table, rule_failure
from carbon_pipeline.watttime.signal_index import SignalIndex

INDEX_UNITS = "percentile"
LOWEST, HIGHEST = 0.0, 100.0


class SignalIndexFrame(pa.DataFrameModel):
    """The one point of a signal index reply, as fetched."""

    region: Series[str] = pa.Field(str_matches=REGION_PATTERN.pattern)
    point_time: Series[pd.DatetimeTZDtype] = pa.Field(dtype_kwargs={"unit": "ns", "tz": "UTC"}, coerce=True)
    percentile: Series[float] = pa.Field(ge=LOWEST, le=HIGHEST)
    units: Series[str] = pa.Field(isin=[INDEX_UNITS])
    model_date: Series[str] = pa.Field(nullable=True)

    @pa.check("percentile", name="finite")
    @classmethod
    def finite(cls, values: Series[float]) -> Series[bool]:
        return Series(np.isfinite(values))

    class Config:
        strict = True


def validate_signal_index(window: RegionWindow, index: SignalIndex) -> pd.DataFrame:
    """The reply's point as a ``SignalIndexFrame`` row, or ``DataRejected`` for every rule it breaks.

    Exactly one point is required: two say two different things about the same period (an exact copy too,
    since nothing else than the copy tells which is right), none leaves the interval without its value.
    """
    frame = index_frame(window.region, index)
    if len(frame) != 1:
        moment = frame["point_time"].iloc[0] if len(frame) else window.start
        sent = frame["raw_value"].tolist()
        raise DataRejected(window, rule_failure(moment, "data", sent, "exactly one point per reply"))
    schema = SignalIndexFrame.to_schema().update_column(
        "point_time",
        checks=[pa.Check.in_range(pd.Timestamp(window.start), pd.Timestamp(window.end), include_max=False)],
    )
    try:
        return schema.validate(frame.drop(columns="raw_value"), lazy=True)
    except pa.errors.SchemaErrors as error:
        raise DataRejected(window, failure_table(error.failure_cases, frame, "percentile")) from None


def index_frame(region: str, index: SignalIndex) -> pd.DataFrame:
    """Every point of the reply with the reply's metadata; the value as sent stays in ``raw_value`` for messages."""
    points = index.frame
    return pd.DataFrame(
        {
            "region": region,
            "point_time": points["point_time"],
            "percentile": points["value"].astype(float),
            "units": index.units or MISSING_UNITS,
            "model_date": index.model_date,
            "raw_value": points["raw_value"],
        }
    ).astype({"region": str, "units": str})
