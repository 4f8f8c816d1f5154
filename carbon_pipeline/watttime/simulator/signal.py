"""Deterministic, realistic MOER values for the simulated WattTime regions.

Values depend only on (region, point time), so a replayed request returns the same
numbers in every process and every test run, while still looking like a grid:
a midday solar dip, an evening peak, a multi-day weather swing and point-to-point noise.
"""

from __future__ import annotations

import math
import zlib
from datetime import UTC, datetime
from functools import cache
from typing import NamedTuple

MIN_VALUE = 200.0
MAX_VALUE = 1600.0
DATA_START = datetime(2018, 1, 1, tzinfo=UTC)
"""No region has history before this instant, like `data_start` in /v3/my-access."""

_NOISE_PERIOD_SECONDS = 300
_DAY_SECONDS = 86_400


class Region(NamedTuple):
    """A catalogue entry; `utc_offset_hours` only moves the daily shape towards local solar time."""

    full_name: str
    period_seconds: int
    parent: str
    utc_offset_hours: int


REGIONS: dict[str, Region] = {
    "CAISO_NORTH": Region("California ISO Northern", 300, "CAISO", -8),
    "PJM_DC": Region("PJM DC", 300, "PJM", -5),
    "PJM_NJ": Region("PJM New Jersey", 300, "PJM", -5),
    "ERCOT_EASTTX": Region("ERCOT East Texas", 300, "ERCOT", -6),
    "MISO_INDIANAPOLIS": Region("MISO Indianapolis", 300, "MISO", -5),
    "NYISO_NYC": Region("NYISO New York City", 300, "NYISO", -5),
    "ISONE_WCMA": Region("ISONE Western/Central Massachusetts", 300, "ISONE", -5),
    "SPP_WESTNE": Region("SPP Western Nebraska", 300, "SPP", -6),
    "PSCO": Region("Public Service Co of Colorado", 300, "PSCO", -7),
    "PACW": Region("PacifiCorp West", 300, "PACW", -8),
    "DE": Region("Germany", 300, "DE", 1),
    "FR": Region("France", 300, "FR", 1),
    "UK": Region("United Kingdom", 300, "UK", 0),
    "IE": Region("Ireland", 3600, "IE", 0),
}

SYNTHETIC_REGION_PREFIX = "SYNTH_"


def synthetic_regions(count: int) -> dict[str, Region]:
    """Made-up 5-minute regions for load tests; their values come from the same generator as the real ones."""
    return {f"{SYNTHETIC_REGION_PREFIX}{n:03d}": Region(f"Synthetic region {n}", 300, "SYNTH", 0) for n in range(count)}


@cache
def _profile(region: str) -> tuple[float, int, int]:
    """Per-region level, UTC offset and seed; crc32 keeps them stable across processes."""
    seed = zlib.crc32(region.encode())
    known = REGIONS.get(region)
    offset_seconds = known.utc_offset_hours * 3600 if known else 0
    return 450.0 + seed % 700, offset_seconds, seed


def _unit_hash(seed: int, slot: int) -> float:
    """Integer mix to [0, 1): far cheaper than hashing bytes, which matters for 8,640-point replies."""
    x = ((slot * 0x9E3779B1) ^ seed) & 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & 0xFFFFFFFF
    x ^= x >> 13
    return x / 4_294_967_296


def moer_at(region: str, epoch: int) -> float:
    """MOER in lbs_co2_per_mwh at a Unix time; the hot path behind every data reply."""
    level, offset_seconds, seed = _profile(region)
    hour = ((epoch + offset_seconds) % _DAY_SECONDS) / 3600
    solar_dip = math.exp(-((hour - 13.0) ** 2) / 8.0)
    evening_peak = math.exp(-((hour - 19.5) ** 2) / 4.5)
    weather = math.sin(epoch / (_DAY_SECONDS * 6.3) * math.tau + seed % 628 / 100)
    noise = _unit_hash(seed, epoch // _NOISE_PERIOD_SECONDS) - 0.5
    value = level * (1 - 0.28 * solar_dip + 0.18 * evening_peak + 0.07 * weather + 0.06 * noise)
    return round(min(MAX_VALUE, max(MIN_VALUE, value)), 1)


def moer_value(region: str, point_time: datetime) -> float:
    """MOER in lbs_co2_per_mwh for an aware point time; a naive one would silently mean local time."""
    if point_time.tzinfo is None:
        raise ValueError("point_time must be timezone-aware")
    return moer_at(region, int(point_time.timestamp()))


def is_imputed(region: str, epoch: int) -> bool:
    """Marks roughly 2% of points as imputed, so `include_imputed_marker` has something to show."""
    return _unit_hash(_profile(region)[2] ^ 0x5BD1E995, epoch // _NOISE_PERIOD_SECONDS) < 0.02


def point_epochs(period_seconds: int, start: datetime, end: datetime) -> range:
    """Unix times of the period-aligned points inside [start, end], both bounds inclusive."""
    first = math.ceil(start.timestamp() / period_seconds) * period_seconds
    last = math.floor(end.timestamp() / period_seconds) * period_seconds
    return range(first, last + 1, period_seconds)
