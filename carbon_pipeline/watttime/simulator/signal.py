"""Deterministic, realistic values of every simulated WattTime signal, per model version.

Values depend only on (signal type, region, model, point time), so a replayed request returns the same
numbers in every process and every test run, while still looking like a grid: a midday solar dip, an
evening peak, a multi-day weather swing and point-to-point noise. Each signal has its own shape and seeds,
so co2_aoer and health_damage are series of their own, not MOER relabelled; an older model version is a
slowly drifting few percent off the newest, so which model answered is visible in the numbers.
"""

from __future__ import annotations

import math
import zlib
from datetime import UTC, datetime
from functools import cache
from typing import NamedTuple

from carbon_pipeline.watttime.simulator.catalogue import (
    AOER,
    HEALTH_DAMAGE,
    MOER,
    REGIONS,
    Region,
    synthetic_regions,
    utc_offset_seconds,
)

MIN_VALUE = 200.0
MAX_VALUE = 1600.0
DATA_START = datetime(2018, 1, 1, tzinfo=UTC)
"""No region has history before this instant, like `data_start` in /v3/my-access."""

_NOISE_PERIOD_SECONDS = 300
_DAY_SECONDS = 86_400
# An older model is at most this far off the newest per version of age, drifting over about a fortnight.
_MODEL_DRIFT = 0.04
_MODEL_DRIFT_PERIOD_SECONDS = _DAY_SECONDS * 13.7
# Revisions pick their points with a hash of their own, and move a value this far (5 % is well above rounding).
_REVISION_SALT = 0x27D4EB2F
_REVISION_STEP = 0.05

__all__ = [
    "DATA_START",
    "REGIONS",
    "Region",
    "is_imputed",
    "is_revised",
    "moer_at",
    "moer_value",
    "revised_value",
    "signal_at",
    "synthetic_regions",
]


class Shape(NamedTuple):
    """How one signal moves: its regional levels, the weight of each daily and weather term, its bounds."""

    base: float  # the lowest regional level
    spread: int  # regional levels fall in [base, base + spread)
    solar_dip: float
    evening_peak: float
    weather: float
    noise: float
    low: float
    high: float
    decimals: int


SHAPES: dict[str, Shape] = {
    MOER: Shape(450.0, 700, 0.28, 0.18, 0.07, 0.06, MIN_VALUE, MAX_VALUE, 1),
    # The average mix gains more from midday solar and less from the evening peaker than the marginal unit.
    AOER: Shape(250.0, 450, 0.40, 0.10, 0.12, 0.02, 50.0, 1200.0, 1),
    # Dollars of health damage per MWh, driven by evening fossil generation near people.
    HEALTH_DAMAGE: Shape(8.0, 40, 0.20, 0.30, 0.10, 0.08, 1.0, 120.0, 2),
}


@cache
def _profile(signal_type: str, region: str) -> tuple[Shape, float, int, int]:
    """Shape, regional level, UTC offset and seed; crc32 keeps them stable across processes.

    MOER's seed is the region's alone, so its values are the ones this simulator always served.
    """
    shape = SHAPES[signal_type]
    seed = zlib.crc32(region.encode() if signal_type == MOER else f"{signal_type}:{region}".encode())
    return shape, shape.base + seed % shape.spread, utc_offset_seconds(region), seed


def _unit_hash(seed: int, slot: int) -> float:
    """Integer mix to [0, 1): far cheaper than hashing bytes, which matters for 8,640-point replies."""
    x = ((slot * 0x9E3779B1) ^ seed) & 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & 0xFFFFFFFF
    x ^= x >> 13
    return x / 4_294_967_296


def signal_at(signal_type: str, region: str, epoch: int, model_age: int = 0) -> float:
    """The value at a Unix time of model `model_age` (0 = the newest, 1 = the one before...); the hot path."""
    shape, level, offset_seconds, seed = _profile(signal_type, region)
    hour = ((epoch + offset_seconds) % _DAY_SECONDS) / 3600
    solar_dip = math.exp(-((hour - 13.0) ** 2) / 8.0)
    evening_peak = math.exp(-((hour - 19.5) ** 2) / 4.5)
    weather = math.sin(epoch / (_DAY_SECONDS * 6.3) * math.tau + seed % 628 / 100)
    noise = _unit_hash(seed, epoch // _NOISE_PERIOD_SECONDS) - 0.5
    value = level * (
        1
        - shape.solar_dip * solar_dip
        + shape.evening_peak * evening_peak
        + shape.weather * weather
        + shape.noise * noise
    )
    if model_age:
        value *= 1 + _MODEL_DRIFT * model_age * math.sin(epoch / _MODEL_DRIFT_PERIOD_SECONDS * math.tau + seed % 97)
    return round(min(shape.high, max(shape.low, value)), shape.decimals)


def moer_at(region: str, epoch: int) -> float:
    """MOER in lbs_co2_per_mwh of the newest model at a Unix time."""
    return signal_at(MOER, region, epoch)


def moer_value(region: str, point_time: datetime) -> float:
    """MOER in lbs_co2_per_mwh for an aware point time; a naive one would silently mean local time."""
    if point_time.tzinfo is None:
        raise ValueError("point_time must be timezone-aware")
    return moer_at(region, int(point_time.timestamp()))


def is_imputed(region: str, epoch: int) -> bool:
    """Marks roughly 2% of points as imputed, so `include_imputed_marker` has something to show."""
    return _unit_hash(_profile(MOER, region)[3] ^ 0x5BD1E995, epoch // _NOISE_PERIOD_SECONDS) < 0.02


def is_revised(signal_type: str, region: str, epoch: int, share: float) -> bool:
    """Whether WattTime revises the point at `epoch` after publishing it: a seeded `share` of all points."""
    return share > 0 and _unit_hash(_profile(signal_type, region)[3] ^ _REVISION_SALT, epoch) < share


def revised_value(signal_type: str, value: float) -> float:
    """The value a revision replaces `value` with: 5 % towards the middle of the signal's range, so it stays inside."""
    shape = SHAPES[signal_type]
    factor = 1 - _REVISION_STEP if value > (shape.low + shape.high) / 2 else 1 + _REVISION_STEP
    return round(value * factor, shape.decimals)


def point_epochs(period_seconds: int, start: datetime, end: datetime) -> range:
    """Unix times of the period-aligned points inside [start, end], both bounds inclusive."""
    first = math.ceil(start.timestamp() / period_seconds) * period_seconds
    last = math.floor(end.timestamp() / period_seconds) * period_seconds
    return range(first, last + 1, period_seconds)
