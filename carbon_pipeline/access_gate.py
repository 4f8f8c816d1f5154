"""Which configured regions a schedule or gap filler may request, by the latest ``watttime_access`` read.

A region the WattTime plan does not cover fails with a 403 on every request, so the schedules and gap
fillers leave it out and say so in the tick's log. Until ``watttime_access`` has been materialized once
nothing is known about the plan, and every configured region is requested as before: the asset is
materialized as soon as a deployment starts, so this lasts one run, and guessing a plan (say, the free
one) would silently stop a paid account's data. A region configured after the latest read is requested
too, for the same reason, until the next read covers it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg

from carbon_pipeline.assets.watttime_access import ASSET_NAME, ENDPOINTS_KEY


@dataclass(frozen=True)
class AllowedRegions:
    """The configured regions a request may cover for ``endpoint``, and those left out for it."""

    endpoint: str
    read_at: datetime
    regions: tuple[str, ...]
    left_out: tuple[str, ...]
    unread: tuple[str, ...]

    def notes(self) -> list[str]:
        """One line per region left out or not yet read, for the tick's log."""
        read = f"{ASSET_NAME}, read {self.read_at:%Y-%m-%dT%H:%MZ}"
        return [f"{region}: not in your WattTime plan for {self.endpoint} ({read})" for region in self.left_out] + [
            f"{region}: not in the latest {ASSET_NAME} read ({read}); requested until it is" for region in self.unread
        ]


def regions_allowed(instance: dg.DagsterInstance, endpoint: str, configured: Sequence[str]) -> AllowedRegions | None:
    """``configured`` split by what the latest ``watttime_access`` materialization allows for ``endpoint``;
    None before the first one, when every configured region is requested."""
    event = instance.get_latest_materialization_event(dg.AssetKey(ASSET_NAME))
    materialization = event.asset_materialization if event is not None else None
    if event is None or materialization is None or ENDPOINTS_KEY not in materialization.metadata:
        return None
    endpoints = materialization.metadata[ENDPOINTS_KEY].value
    if not isinstance(endpoints, dict):
        raise TypeError(f"{ASSET_NAME} recorded {ENDPOINTS_KEY} as {endpoints!r}, not a mapping of region to endpoints")
    # A region the read does not cover (configured after it) is taken as allowed until the next read.
    allowed = {region: endpoint in endpoints.get(region, [endpoint]) for region in configured}
    return AllowedRegions(
        endpoint=endpoint,
        read_at=datetime.fromtimestamp(event.timestamp, UTC),
        regions=tuple(region for region, ok in allowed.items() if ok),
        left_out=tuple(region for region, ok in allowed.items() if not ok),
        unread=tuple(region for region in configured if region not in endpoints),
    )


def requestable(
    instance: dg.DagsterInstance, endpoint: str, configured: Sequence[str]
) -> tuple[tuple[str, ...], list[str]]:
    """The regions to request for ``endpoint`` and the log lines saying which were left out and why."""
    allowed = regions_allowed(instance, endpoint, configured)
    if allowed is None:
        return tuple(configured), []
    return allowed.regions, allowed.notes()


def contiguous_blocks(allowed: Sequence[str], configured: Sequence[str]) -> list[tuple[str, ...]]:
    """``allowed`` cut where ``configured`` has a region between them: a run's range of regions covers
    every configured region from its first to its last, so one left out in the middle splits the run."""
    wanted = set(allowed)
    blocks: list[list[str]] = [[]]
    for region in configured:
        if region in wanted:
            blocks[-1].append(region)
        elif blocks[-1]:
            blocks.append([])
    return [tuple(block) for block in blocks if block]
