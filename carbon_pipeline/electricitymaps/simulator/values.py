"""Deterministic average carbon intensity per zone, time and emission factor type.

Each zone has a level and a daily swing (solar lowers the afternoon), plus a seeded per-hour wobble, so the
same zone and time give the same value in every run. Direct factors leave out upstream emissions, so they
are a zone-specific share of the lifecycle value: the two types never coincide.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Zone:
    level: float  # mean lifecycle gCO2eq/kWh
    swing: float  # daily amplitude, gCO2eq/kWh
    direct_share: float  # direct / lifecycle


ZONES = {
    "DE": Zone(level=380.0, swing=90.0, direct_share=0.86),
    "FR": Zone(level=55.0, swing=15.0, direct_share=0.45),
    "US-CAL-CISO": Zone(level=240.0, swing=110.0, direct_share=0.80),
}
SYNTHETIC_PREFIX = "XX-SYN-"


def synthetic_zones(count: int) -> dict[str, Zone]:
    """XX-SYN-000, XX-SYN-001, ...: extra zones for benchmarks with many zones."""
    return {
        f"{SYNTHETIC_PREFIX}{index:03d}": Zone(level=100.0 + 7.0 * (index % 60), swing=40.0, direct_share=0.8)
        for index in range(count)
    }


def intensity(zone_key: str, zone: Zone, moment: datetime, emission_factor_type: str) -> float:
    hours = moment.timestamp() / 3600
    daily = -zone.swing * math.sin(2 * math.pi * ((hours % 24) - 6) / 24)
    digest = hashlib.sha256(f"{zone_key}|{int(moment.timestamp())}".encode()).digest()
    wobble = (digest[0] / 255 - 0.5) * 0.1 * zone.level
    lifecycle = max(1.0, zone.level + daily + wobble)
    value = lifecycle if emission_factor_type == "lifecycle" else lifecycle * zone.direct_share
    return round(value, 2)
