"""Forecast and published frames in the shared contract's columns, built from gCO2/kWh values.

Window and accuracy tests reason in gCO2/kWh at 4 decimals (the values they compare exactly), so they give
those values directly; the MOER column is derived from them only to complete the frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from carbon_pipeline.sinks.line_protocol import LBS_PER_MWH_TO_G_PER_KWH

ISSUE_TIME = datetime(2025, 1, 1, tzinfo=UTC)
PERIOD = timedelta(minutes=5)


def forecast_issue(
    gco2: Sequence[float],
    *,
    region: str = "CAISO_NORTH",
    issue_time: datetime = ISSUE_TIME,
    first_point: datetime | None = None,
    period: timedelta = PERIOD,
) -> pd.DataFrame:
    """One issue: a point every ``period`` (5 minutes unless given) from ``first_point`` (the issue time by default)."""
    values = np.round(np.asarray(gco2, dtype=float), 4)
    horizons = np.arange(len(values), dtype=np.int64) * (period // timedelta(minutes=1))
    issued = pd.Timestamp(issue_time).as_unit("ns")
    first = pd.Timestamp(first_point or issue_time).as_unit("ns")
    return pd.DataFrame(
        {
            "region": region,
            "issue_time": issued,
            "generated_at": issued + pd.Timedelta(seconds=42),
            "point_time": first + pd.to_timedelta(horizons, unit="min"),
            "horizon_minutes": horizons,
            "moer_lbs_per_mwh": values / LBS_PER_MWH_TO_G_PER_KWH,
            "carbon_intensity_gco2_kwh": values,
            "model_date": "2023-03-01",
        }
    )


def stacked(issues: Sequence[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(issues, ignore_index=True)


def published(
    point_times: Sequence[datetime] | pd.Series, gco2: Sequence[float], region: str = "CAISO_NORTH"
) -> pd.DataFrame:
    """The carbon_intensity frame of ``region``: one published value per point time."""
    values = np.round(np.asarray(gco2, dtype=float), 4)
    return pd.DataFrame(
        {
            "region": region,
            "point_time": pd.DatetimeIndex(point_times).as_unit("ns"),
            "moer_lbs_per_mwh": values / LBS_PER_MWH_TO_G_PER_KWH,
            "carbon_intensity_gco2_kwh": values,
            "model_date": "2023-03-01",
            "imputed": pd.array([None] * len(values), dtype="boolean"),
        }
    )


def published_series(start: datetime, gco2: Sequence[float], region: str = "CAISO_NORTH") -> pd.DataFrame:
    """Published values every 5 minutes from ``start``."""
    return published(pd.date_range(start, periods=len(gco2), freq=PERIOD), gco2, region)
