"""What the simulator publishes, as the pipeline must store it: tests and benchmarks check InfluxDB against it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from carbon_pipeline.sinks.line_protocol import LBS_PER_MWH_TO_G_PER_KWH
from carbon_pipeline.validation import GCO2_KWH_DECIMALS
from carbon_pipeline.watttime.simulator import moer_value
from carbon_pipeline.watttime.simulator.signal import is_revised, revised_value


@dataclass(frozen=True)
class StoredPoint:
    time: int
    moer: float
    grams: float


def truth(
    region: str, first: datetime, end: datetime, period_seconds: int = 300, revision_share: float = 0.0
) -> list[StoredPoint]:
    """What the simulator publishes for [first, end), converted as the pipeline must; with ``revision_share``,
    as it serves the points once their revisions are due."""
    points = []
    moment = first
    while moment < end:
        moer = moer_value(region, moment)
        if is_revised("co2_moer", region, int(moment.timestamp()), revision_share):
            moer = revised_value("co2_moer", moer)
        points.append(
            StoredPoint(int(moment.timestamp()), moer, round(moer * LBS_PER_MWH_TO_G_PER_KWH, GCO2_KWH_DECIMALS))
        )
        moment += timedelta(seconds=period_seconds)
    return points
