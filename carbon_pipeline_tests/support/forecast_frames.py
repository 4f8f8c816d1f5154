"""Validated forecast frames shaped exactly as ``carbon_pipeline.forecast_validation`` hands them on.

Tests of what consumes forecasts (serializers, queries) build them here from a few numbers, so
that they do not depend on WattTime, the simulator or the validation rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from carbon_pipeline.partitions import INTERVAL
from carbon_pipeline.sinks.line_protocol import LBS_PER_MWH_TO_G_PER_KWH
from carbon_pipeline.validation import GCO2_KWH_DECIMALS

PERIOD = timedelta(minutes=5)
POINTS_PER_HOUR = 12
_PERIOD_MINUTES = PERIOD // timedelta(minutes=1)


@dataclass(frozen=True)
class ForecastIssue:
    """One forecast: its issue time and its MOER values, one per 5-minute point from its first."""

    generated_at: datetime
    moer: Sequence[float]
    region: str = "CAISO_NORTH"
    model_date: str | None = "2023-03-01"

    @property
    def issue_time(self) -> datetime:
        """The 15-minute interval (the partition) the forecast was issued in."""
        return _floor(self.generated_at, INTERVAL)

    @property
    def first_point(self) -> datetime:
        return _floor(self.generated_at, PERIOD)

    def point_time(self, horizon_minutes: int) -> datetime:
        return self.first_point + timedelta(minutes=horizon_minutes)


def forecast_frame(issues: Sequence[ForecastIssue]) -> pd.DataFrame:
    """The issues stacked in the contract's columns, dtypes and conversion to gCO2/kWh."""
    sizes = [len(issue.moer) for issue in issues]
    horizons = np.concatenate([np.arange(size, dtype=np.int64) * _PERIOD_MINUTES for size in sizes])
    first_points = _repeated([issue.first_point for issue in issues], sizes)
    moer = pd.Series(np.concatenate([np.asarray(issue.moer, dtype=float) for issue in issues]))
    return pd.DataFrame(
        {
            "region": np.repeat([issue.region for issue in issues], sizes).astype(object),
            "issue_time": _repeated([issue.issue_time for issue in issues], sizes),
            "generated_at": _repeated([issue.generated_at for issue in issues], sizes),
            "point_time": first_points + pd.to_timedelta(horizons, unit="min"),
            "horizon_minutes": horizons,
            "moer_lbs_per_mwh": moer,
            "carbon_intensity_gco2_kwh": (moer * LBS_PER_MWH_TO_G_PER_KWH).round(GCO2_KWH_DECIMALS),
            "model_date": np.repeat(np.array([issue.model_date for issue in issues], dtype=object), sizes),
        }
    )


def _floor(moment: datetime, step: timedelta) -> datetime:
    return moment - (moment - moment.replace(hour=0, minute=0, second=0, microsecond=0)) % step


def _repeated(values: Sequence[datetime], sizes: Sequence[int]) -> pd.Series:
    return pd.Series(pd.DatetimeIndex(values).as_unit("ns").repeat(sizes), dtype="datetime64[ns, UTC]")
