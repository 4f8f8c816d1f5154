"""WattTime's forecasts, read: one typed `Forecast` per issue, from `/v3/forecast` or `/v3/forecast/historical`.

A forecast is only worth storing with the time WattTime issued it (`generated_at`): the same point forecast a
day ahead and an hour ahead are two different numbers, and accuracy is measured by lead time. Parsing is as
strict about shapes as `/v3/historical`'s and, like it, never drops what WattTime sent: null, non-numeric or
off-grid values reach validation, which reports them with the region and the issue time.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from carbon_pipeline.watttime.endpoints import Call, require, require_horizon_hours
from carbon_pipeline.watttime.replies import (
    Reply,
    SignalMeta,
    SignalReply,
    points_frame,
    response_error,
    signal_document,
)


@dataclass(frozen=True, eq=False, kw_only=True)
class Forecast(SignalReply):
    """One forecast as WattTime issued it, with the metadata the writer stores as tags.

    `frame` has the columns of a `HistoricalChunk`'s (`point_time`, `value`, `raw_value`, `imputed`, the last
    always null: forecasts carry no imputation marker), so both pass through the same checks.
    `generated_at` is WattTime's issue time, tz-aware UTC.
    """

    generated_at: datetime

    @property
    def start(self) -> datetime:
        """The first point's time; the issue time when WattTime sent no point."""
        if self.frame.empty:
            return self.generated_at
        moment: datetime = self.frame["point_time"].iloc[0].to_pydatetime()
        return moment

    @property
    def end(self) -> datetime:
        """Where the last point's period ends: the forecast covers [start, end)."""
        if self.frame.empty:
            return self.generated_at
        last: datetime = self.frame["point_time"].iloc[-1].to_pydatetime()
        return last + timedelta(seconds=self.period_seconds or 0)


def forecast_params(region: str, signal_type: str, horizon_hours: int, model: str | None) -> dict[str, str | int]:
    """What both forecast endpoints are asked; checked before anything is sent."""
    params: dict[str, str | int] = {
        "region": region,
        "signal_type": signal_type,
        "horizon_hours": require_horizon_hours(horizon_hours),
    }
    if model is not None:
        require(bool(model.strip()), "model must be a model date such as 2023-03-01, or None for the newest")
        params["model"] = model
    return params


def parse_forecast(call: Call, reply: Reply, *, region: str, signal_type: str) -> Forecast:
    """Read a `/v3/forecast` reply: `data` is the points, `meta.generated_at` the issue time."""
    data, meta, parsed = signal_document(call, reply)
    generated_at = _generated_at(call, reply.request_id, meta.get("generated_at"), "meta.generated_at")
    frame = points_frame(call, reply.request_id, data)
    return _forecast(region, signal_type, generated_at, parsed, reply.request_id, frame)


def parse_historical_forecasts(
    call: Call, reply: Reply, *, region: str, signal_type: str, issue_interval: timedelta | None = None
) -> list[Forecast]:
    """Read a `/v3/forecast/historical` reply: `data` is `[{"generated_at", "forecast": [points]}]`.

    With `issue_interval`, only the first forecast issued in each interval (`first_issues`) is parsed and kept.
    The points of the forecasts kept are parsed in one pass and then split: a day of issues is 288 forecasts
    of 288 points, and parsing each forecast on its own would cost a DataFrame construction per issue.
    """
    data, _, parsed = signal_document(call, reply)
    issues: list[datetime] = []
    point_lists: list[list[Any]] = []
    for index, item in enumerate(data):
        where = f"data[{index}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("forecast"), list):
            raise response_error(call, reply.request_id, f"{where} should be an object with a 'forecast' list")
        issues.append(_generated_at(call, reply.request_id, item.get("generated_at"), f"{where}.generated_at"))
        point_lists.append(item["forecast"])
    kept = range(len(issues)) if issue_interval is None else first_issues(issues, issue_interval)
    issues, point_lists = [issues[index] for index in kept], [point_lists[index] for index in kept]
    frame = points_frame(call, reply.request_id, [point for points in point_lists for point in points])
    bounds = np.cumsum([0, *map(len, point_lists)])
    return [
        _forecast(region, signal_type, issue, parsed, reply.request_id, frame.iloc[first:last].reset_index(drop=True))
        for issue, first, last in zip(issues, bounds[:-1], bounds[1:], strict=True)
    ]


def first_issues(issues: list[datetime], interval: timedelta) -> list[int]:
    """Positions of the earliest issue in each `interval` (counted from the Unix epoch, so from UTC midnight).

    WattTime issues a forecast every 5 minutes; a pipeline that stores one per 15-minute interval needs a
    third of them, and parsing the others would only cost time and memory. The positions come in issue order.
    """
    seconds = interval.total_seconds()
    earliest: dict[int, int] = {}
    for position, issue in enumerate(issues):
        slot = int(issue.timestamp() // seconds)
        if slot not in earliest or issue < issues[earliest[slot]]:
            earliest[slot] = position
    return sorted(earliest.values(), key=lambda position: issues[position])


def _forecast(
    region: str,
    signal_type: str,
    generated_at: datetime,
    meta: SignalMeta,
    request_id: str | None,
    frame: pd.DataFrame,
) -> Forecast:
    return Forecast(
        region=region,
        signal_type=signal_type,
        generated_at=generated_at,
        units=meta.units,
        period_seconds=meta.period_seconds,
        model_date=meta.model_date,
        warnings=meta.warnings,
        request_id=request_id,
        frame=frame,
    )


def _generated_at(call: Call, request_id: str | None, raw: object, where: str) -> datetime:
    """An issue time must be there and carry its zone: a guessed zone would shift every lead time by hours."""
    if not isinstance(raw, str):
        raise response_error(call, request_id, f"{where} should be an ISO-8601 timestamp, got {raw!r}")
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise response_error(call, request_id, f"{where} is not an ISO-8601 timestamp: {raw!r}") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise response_error(call, request_id, f"{where} has no timezone: {raw!r}")
    return moment.astimezone(UTC)
