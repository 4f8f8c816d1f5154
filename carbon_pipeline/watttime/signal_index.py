"""WattTime's signal index, read: the current 5-minute period's percentile of MOER, 0 cleanest to 100 dirtiest.

`/v3/signal-index` is absent from WattTime's published OpenAPI document; its reply is read as aiowatttime's
fixture shows it (`{"data": [one point], "meta": {..., "units": "percentile"}}`). Like every other reply, it
is parsed without dropping anything: a reply of two points, none, or a null value reaches validation whole,
which refuses it with the region and interval named. The value is a rank, not lbs/MWh: it is never converted.
"""

from dataclasses import dataclass
from datetime import datetime

from carbon_pipeline.watttime.endpoints import Call
from carbon_pipeline.watttime.replies import Reply, SignalReply, points_frame, signal_document


@dataclass(frozen=True, eq=False, kw_only=True)
class SignalIndex(SignalReply):
    """One `/v3/signal-index` reply; `frame` holds every point it had (`point_time` UTC, `value`, `raw_value`).

    `point_time` and `value` read its one point, as WattTime promises one; use them once validation has
    confirmed there is exactly one.
    """

    @property
    def point_time(self) -> datetime:
        self._require_one_point()
        moment: datetime = self.frame["point_time"].iloc[0].to_pydatetime()
        return moment

    @property
    def value(self) -> float:
        self._require_one_point()
        return float(self.frame["value"].iloc[0])

    def _require_one_point(self) -> None:
        if len(self.frame) != 1:
            raise ValueError(f"the signal index reply for {self.region} has {len(self.frame)} points, not one")


def parse_signal_index(call: Call, reply: Reply, *, region: str, signal_type: str) -> SignalIndex:
    """Read a `/v3/signal-index` reply for the region and signal type it was asked for."""
    data, _, meta = signal_document(call, reply)
    return SignalIndex(
        region=region,
        signal_type=signal_type,
        units=meta.units,
        period_seconds=meta.period_seconds,
        model_date=meta.model_date,
        warnings=meta.warnings,
        request_id=reply.request_id,
        frame=points_frame(call, reply.request_id, data),
    )
