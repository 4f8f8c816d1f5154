"""What the simulator publishes, as the pipeline must store it: tests and benchmarks check InfluxDB against it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from carbon_pipeline.sinks.line_protocol import LBS_PER_MWH_TO_G_PER_KWH
from carbon_pipeline.validation import GCO2_KWH_DECIMALS
from carbon_pipeline.watttime.simulator import moer_value


@dataclass(frozen=True)
class StoredPoint:
    time: int
    moer: float
    grams: float


def truth(region: str, first: datetime, end: datetime, period_seconds: int = 300) -> list[StoredPoint]:
    """What the simulator publishes for [first, end), converted as the pipeline must."""
    points = []
    moment = first
    while moment < end:
        moer = moer_value(region, moment)
        points.append(
            StoredPoint(int(moment.timestamp()), moer, round(moer * LBS_PER_MWH_TO_G_PER_KWH, GCO2_KWH_DECIMALS))
        )
        moment += timedelta(seconds=period_seconds)
    return points
