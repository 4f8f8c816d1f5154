"""What the simulated WattTime forecast said, issue by issue: the later published values plus an honest error.

A forecast that equals what is later published would make every accuracy figure perfect and meaningless, so
each issue's curve is the published series plus a deterministic, smooth perturbation whose amplitude grows
with the lead time (about 1 % of the value for the current period, 9 % a day ahead, 15 % three days ahead).
The perturbation is a sum of slow waves whose phases drift with the issue time: roughly zero on average,
different from one issue to the next but never jumping, and the same in every process, so a forecast fetched
from `/v3/forecast` at T equals the one `/v3/forecast/historical` returns for `generated_at` T.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence

import numpy as np

from carbon_pipeline.watttime.simulator.signal import SHAPES, signal_at

ISSUE_PERIOD_SECONDS = 300
"""WattTime issues a forecast every 5 minutes (`generated_at_period_seconds`)."""
SIGNAL = "co2_moer"

_FLOOR = 0.01  # relative error amplitude for the current period
_GROWTH = 0.14  # relative amplitude added by the longest lead
_LONGEST_LEAD_SECONDS = 72 * 3600
# (period in point time, weight, how long the phase takes to drift a full turn in issue time), all in seconds.
_WAVES = ((3.1 * 3600, 0.6, 9.7 * 3600), (11.3 * 3600, 0.4, 29.0 * 3600))


def issue_time(epoch: int) -> int:
    """The `generated_at` of the newest forecast at a Unix time: issues fall on the 5-minute grid."""
    return epoch - epoch % ISSUE_PERIOD_SECONDS


def first_point(generated_at: int, period_seconds: int) -> int:
    """A forecast starts with the period its issue time falls in, like WattTime's first "nowcast" point."""
    return generated_at - generated_at % period_seconds


def point_count(horizon_hours: int, period_seconds: int) -> int:
    """Points of a forecast `horizon_hours` ahead: 288 for 24 h at 5 minutes, 1 (the nowcast) for 0 h."""
    return max(1, horizon_hours * 3600 // period_seconds)


def published(signal_type: str, region: str, model_age: int, epochs: Sequence[int]) -> np.ndarray:
    """What `/v3/historical` publishes at these times: the values every forecast is a perturbation of."""
    return np.array([signal_at(signal_type, region, epoch, model_age) for epoch in epochs], dtype=np.float64)


def forecast_values(
    signal_type: str, region: str, model_age: int, generated_at: int, epochs: np.ndarray, actual: np.ndarray
) -> list[float]:
    """The values the issue of `generated_at` forecast for `epochs`, whose published values are `actual`."""
    shape = SHAPES[signal_type]
    seed = zlib.crc32(f"forecast:{signal_type}:{region}:{model_age}".encode())
    lead = np.clip(epochs - generated_at, 0, _LONGEST_LEAD_SECONDS) / _LONGEST_LEAD_SECONDS
    amplitude = _FLOOR + _GROWTH * np.sqrt(lead)
    wave = np.zeros(len(epochs))
    for index, (period, weight, drift) in enumerate(_WAVES):
        phase = generated_at / drift * math.tau + (seed >> (8 * index)) % 628 / 100
        wave += weight * np.sin(epochs / period * math.tau + phase)
    values = np.clip(actual * (1 + amplitude * wave), shape.low, shape.high)
    rounded: list[float] = np.round(values, shape.decimals).tolist()
    return rounded


def issued_forecast(
    region: str,
    generated_at: int,
    horizon_hours: int,
    period: int = ISSUE_PERIOD_SECONDS,
    signal_type: str = SIGNAL,
    model_age: int = 0,
) -> list[float]:
    """The values a model's issue of `generated_at` forecast, point by point: what both endpoints serve."""
    first = first_point(generated_at, period)
    epochs = np.arange(first, first + point_count(horizon_hours, period) * period, period)
    actual = published(signal_type, region, model_age, epochs.tolist())
    return forecast_values(signal_type, region, model_age, generated_at, epochs, actual)
