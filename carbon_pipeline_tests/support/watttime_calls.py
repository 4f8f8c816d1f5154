"""One-hour WattTime client calls and the request counts the client tests read back from the simulator.

The client tests all fetch the same hour of March 2024 and assert on how many requests reached a path, so
the window, its point count and the reply bodies a scripted server serves live here once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from carbon_pipeline.watttime.client import WattTimeClient
from carbon_pipeline.watttime.simulator import SimulatorServer

HISTORICAL = "/v3/historical"
DAY_START = datetime(2024, 3, 1, tzinfo=UTC)
HOUR = (DAY_START, DAY_START + timedelta(hours=1))
POINTS_PER_HOUR = 12
SCRIPTED_PASSWORD = "pw-4a5b6c-never-log-me"


def requests_to(sim: SimulatorServer, path: str) -> int:
    count: int = sim.state.stats()["requests"][path]
    return count


def one_hour(client: WattTimeClient, region: str = "CAISO_NORTH") -> pd.DataFrame:
    (chunk,) = client.historical(region, *HOUR)
    return chunk.frame


def signal_body(points: list[dict[str, Any]], **meta: Any) -> dict[str, Any]:
    return {"data": points, "meta": {"data_point_period_seconds": 300, "units": "lbs_co2_per_mwh", **meta}}


GOOD_BODY = signal_body([{"point_time": "2024-03-01T00:00:00+00:00", "value": 900.5}])
