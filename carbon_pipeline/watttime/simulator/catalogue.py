"""The regions the simulator serves, per signal type, and where on the map each one is.

WattTime's regions depend on the signal type: MOER comes per ISO sub-region, AOER per grid operator (the SDK's
tests read `CAISO` for co2_aoer but `CAISO_NORTH` for co2_moer), and health damage only for the US. The
simulator keeps that shape so that clients which assume one region list for every signal fail here first.
Locations are coarse latitude/longitude boxes, enough for `/v3/region-from-loc` to answer like the real API
for the places WattTime's docs and SDK use as examples; they are no map.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

MOER, AOER, HEALTH_DAMAGE = "co2_moer", "co2_aoer", "health_damage"
# WattTime does not document health_damage's unit string; it is dollars of health damage per MWh.
SIGNAL_UNITS = {MOER: "lbs_co2_per_mwh", AOER: "lbs_co2_per_mwh", HEALTH_DAMAGE: "usd_per_mwh"}
SYNTHETIC_REGION_PREFIX = "SYNTH_"


class Region(NamedTuple):
    """A catalogue entry; `utc_offset_hours` only moves the daily shape towards local solar time."""

    full_name: str
    period_seconds: int
    parent: str
    utc_offset_hours: int


class Box(NamedTuple):
    """Latitude and longitude bounds in degrees, both inclusive."""

    south: float
    north: float
    west: float
    east: float

    def contains(self, latitude: float, longitude: float) -> bool:
        return self.south <= latitude <= self.north and self.west <= longitude <= self.east


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
"""The co2_moer regions, WattTime's finest."""

_OPERATORS: dict[str, Region] = {
    "CAISO": Region("California ISO", 3600, "CAISO", -8),
    "PJM": Region("PJM Interconnection", 3600, "PJM", -5),
    "ERCOT": Region("Electric Reliability Council of Texas", 3600, "ERCOT", -6),
    "MISO": Region("Midcontinent ISO", 3600, "MISO", -5),
    "NYISO": Region("New York ISO", 3600, "NYISO", -5),
    "ISONE": Region("ISO New England", 3600, "ISONE", -5),
    "SPP": Region("Southwest Power Pool", 3600, "SPP", -6),
}
AOER_REGIONS: dict[str, Region] = _OPERATORS | {
    name: region._replace(period_seconds=3600) for name, region in REGIONS.items() if region.parent == name
}
"""The co2_aoer regions: one per grid operator, hourly (WattTime's own AOER example is hourly)."""

_US_OFFSETS = range(-10, -4)
HEALTH_DAMAGE_REGIONS: dict[str, Region] = {
    name: region for name, region in REGIONS.items() if region.utc_offset_hours in _US_OFFSETS
}
"""The health_damage regions: WattTime models health damage for the US only."""

SIGNAL_REGIONS: dict[str, dict[str, Region]] = {MOER: REGIONS, AOER: AOER_REGIONS, HEALTH_DAMAGE: HEALTH_DAMAGE_REGIONS}

# Smallest first: the first box holding a point names its region.
LOCATIONS: dict[str, Box] = {
    "PJM_DC": Box(38.79, 39.0, -77.12, -76.90),
    "NYISO_NYC": Box(40.49, 40.92, -74.26, -73.70),
    "MISO_INDIANAPOLIS": Box(39.6, 40.0, -86.35, -85.95),
    "ISONE_WCMA": Box(41.98, 42.89, -73.51, -71.60),
    "PJM_NJ": Box(38.9, 41.36, -75.56, -73.89),
    "ERCOT_EASTTX": Box(29.5, 33.5, -96.5, -93.5),
    "PSCO": Box(37.0, 41.0, -106.5, -103.5),
    "SPP_WESTNE": Box(40.0, 43.0, -104.05, -100.0),
    "CAISO_NORTH": Box(36.0, 42.0, -124.5, -119.0),
    "PACW": Box(42.0, 46.3, -124.6, -116.5),
    "IE": Box(51.4, 55.4, -10.5, -6.0),
    "UK": Box(49.9, 58.7, -8.2, 1.8),
    "DE": Box(47.27, 55.06, 5.87, 15.04),
    "FR": Box(42.33, 51.09, -4.79, 8.23),
}


def synthetic_regions(count: int) -> dict[str, Region]:
    """Made-up 5-minute regions for load tests; their values come from the same generator as the real ones."""
    return {f"{SYNTHETIC_REGION_PREFIX}{n:03d}": Region(f"Synthetic region {n}", 300, "SYNTH", 0) for n in range(count)}


def utc_offset_seconds(region: str) -> int:
    """Where the region's day starts, from whichever catalogue knows it; made-up regions follow UTC."""
    for catalogue in SIGNAL_REGIONS.values():
        if region in catalogue:
            return catalogue[region].utc_offset_hours * 3600
    return 0


def region_at(signal_type: str, latitude: float, longitude: float, served: Mapping[str, Region]) -> str | None:
    """The region of `served` (one signal's catalogue) whose box holds the point, else None."""
    for moer_region, box in LOCATIONS.items():
        if box.contains(latitude, longitude):
            region = REGIONS[moer_region].parent if signal_type == AOER else moer_region
            return region if region in served else None
    return None
