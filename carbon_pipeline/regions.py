"""WattTime region names: validation and the grid operator behind each region.

Region names end up in URLs, InfluxDB tags and Dagster partition keys, so they are checked against WattTime's
observed naming (upper-case letters, digits, underscores) before anything is sent or written.
"""

import re

REGION_PATTERN = re.compile(r"^[A-Z0-9_]+$")

# The grid operator is a lookup rather than a split of the region name: "PSCO", "UK" or "NEM_NSW" have no
# operator prefix, and a split would invent one. Values are short upper-case names so they are safe as tags.
# Countries with a single national TSO map to it; countries with several (DE) or an ambiguous one map to
# their own code.
GRID_OPERATORS: dict[str, str] = {
    # US ISOs/RTOs and their sub-regions.
    "CAISO": "CAISO",
    "CAISO_NORTH": "CAISO",
    "PJM": "PJM",
    "PJM_DC": "PJM",
    "PJM_CHICAGO": "PJM",
    "PJM_NJ": "PJM",
    "ERCOT_EASTTX": "ERCOT",
    "ERCOT_AUSTIN": "ERCOT",
    "MISO_INDIANAPOLIS": "MISO",
    "NYISO_NYC": "NYISO",
    "ISONE_WCMA": "ISONE",
    "SPP_WESTNE": "SPP",
    # US balancing authorities that are their own operator.
    "PSCO": "PSCO",
    "PACW": "PACW",
    "PACE": "PACE",
    "LDWP": "LDWP",
    "FPL": "FPL",
    "SOCO": "SOCO",
    "AZPS": "AZPS",
    "WALC": "WALC",
    "PNM": "PNM",
    # Countries.
    "DE": "DE",
    "FR": "RTE",
    "IE": "EIRGRID",
    "IT": "TERNA",
    "SE": "SVK",
    "NL": "TENNET",
    "PL": "PSE",
    "NO": "STATNETT",
    "UK": "UK",
    "KOR": "KPX",
    "SGP": "SGP",
    "IND": "IND",
    "BRA": "ONS",
    # Sub-national regions outside the US.
    "JP_TK": "TEPCO",
    "NEM_NSW": "AEMO",
    "HQ": "HQ",
}

UNKNOWN_GRID_OPERATOR = "unknown"


def validate_region(name: str) -> str:
    """Reject names WattTime cannot know before they reach a URL, a tag or a partition key."""
    if not isinstance(name, str) or not REGION_PATTERN.fullmatch(name):
        raise ValueError(
            f"Invalid WattTime region {name!r}: expected upper-case letters, digits and underscores "
            "only, e.g. 'CAISO_NORTH'"
        )
    return name


def parse_regions(csv: str) -> tuple[str, ...]:
    """Parse a comma-separated region list (the CARBON_REGIONS variable), failing loudly on typos."""
    names = tuple(part.strip() for part in csv.split(","))
    if any(not name for name in names):
        raise ValueError(f"Region list {csv!r} has an empty entry; expected e.g. 'CAISO_NORTH,PJM_DC'")
    for name in names:
        validate_region(name)
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"Region list {csv!r} repeats {', '.join(duplicates)}")
    return names


def grid_operator_for(region: str) -> str:
    """Return the operator tag for a region, or "unknown" rather than guessing from the name."""
    return GRID_OPERATORS.get(region, UNKNOWN_GRID_OPERATOR)
