"""Which faults a soak run injects, and when: a plan drawn from a seed, so a failing soak can be replayed.

The plan is a sequence of episodes over the schedule's ticks, one at a time. An episode is one
fault of WattTime (the simulator's faults) or InfluxDB (the shim's, or the server down), and it is
one of three sorts:

- **transient**: one tick, the fault hits one request and the run's retries absorb it;
- **outage**: several consecutive ticks whose every request fails the same way, so each run fails;
- **bad data**: a 200 reply with wrong content for one region, for one tick or a few.

Each episode says what the runs it covers must do (succeed, or fail for its regions with the
failure kind the alerts count), which is what the report checks the pipeline against.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from carbon_pipeline.run_outcomes import FailureKind

Layer = Literal["WattTime", "InfluxDB"]
Sort = Literal["transient", "outage", "bad data"]
EPISODE_RATE = 0.3  # chance that an episode starts at a tick with none under way
OUTAGE_TICKS = (2, 8)  # half an hour to two hours
BAD_DATA_TICKS = (1, 3)
SORT_WEIGHTS: dict[Sort, float] = {"transient": 0.4, "outage": 0.35, "bad data": 0.25}


@dataclass(frozen=True)
class FaultSpec:
    """One fault the soak knows how to inject; ``failure`` is how a run it fails is counted."""

    layer: Layer
    name: str
    failure: FailureKind
    fails_runs: bool = True

    @property
    def label(self) -> str:
        return f"{self.layer} {self.name}"


def _watttime(name: str, failure: FailureKind = FailureKind.WATTTIME, *, fails_runs: bool = True) -> FaultSpec:
    return FaultSpec("WattTime", name, failure, fails_runs)


def _influxdb(name: str) -> FaultSpec:
    return FaultSpec("InfluxDB", name, FailureKind.INFLUXDB_WRITE)


# WattTime names are the simulator's Fault kinds ("429" etc. are its "status" kind); InfluxDB's, the shim's.
TRANSIENT = tuple(
    [_watttime(name) for name in ("429", "500", "503", "timeout", "reset", "malformed_json", "truncated")]
    + [_influxdb(name) for name in ("500", "503", "reset", "lost_reply")]
)
OUTAGES = tuple(
    [_watttime(name) for name in ("429", "500", "503", "timeout")]
    + [_influxdb(name) for name in ("500", "down", "lost_reply")]
)
BAD_DATA = tuple(
    [_watttime(name, FailureKind.DATA_REJECTED) for name in ("nulls", "out_of_range", "non_numeric", "wrong_units")]
    + [_watttime("conflicting_duplicates", FailureKind.DATA_REJECTED)]
    + [_watttime(name, FailureKind.DATA_INCOMPLETE) for name in ("missing_point", "empty")]
    + [_watttime("duplicates", fails_runs=False)]  # an exact copy is kept once, with a warning
)
CATALOGUE: dict[Sort, tuple[FaultSpec, ...]] = {"transient": TRANSIENT, "outage": OUTAGES, "bad data": BAD_DATA}


@dataclass(frozen=True)
class Episode:
    """``fault`` from tick ``first`` for ``ticks`` ticks, on one region's replies or (None) on every request."""

    sort: Sort
    fault: FaultSpec
    first: int
    ticks: int
    region: str | None = None

    @property
    def end(self) -> int:
        return self.first + self.ticks

    @property
    def label(self) -> str:
        return f"{self.fault.label} ({self.sort})"

    @property
    def fails_runs(self) -> bool:
        return self.sort != "transient" and self.fault.fails_runs

    def failed_regions(self, regions: Sequence[str]) -> tuple[str, ...]:
        """The regions a run under this episode fails for, when it fails."""
        return (self.region,) if self.region is not None else tuple(regions)


def fault_plan(seed: int, ticks: int, regions: Sequence[str]) -> list[Episode]:
    """Episodes over ``ticks`` ticks, one at a time, the same for the same seed, ticks and regions."""
    rng = random.Random(seed)
    episodes: list[Episode] = []
    tick = 0
    while tick < ticks:
        if rng.random() >= EPISODE_RATE:
            tick += 1
            continue
        sort = rng.choices(list(SORT_WEIGHTS), weights=list(SORT_WEIGHTS.values()))[0]
        fault = rng.choice(CATALOGUE[sort])
        length = {"transient": (1, 1), "outage": OUTAGE_TICKS, "bad data": BAD_DATA_TICKS}[sort]
        region = rng.choice(list(regions)) if sort == "bad data" else None
        episode = Episode(sort, fault, tick, min(rng.randint(*length), ticks - tick), region)
        episodes.append(episode)
        tick = episode.end
    return episodes


def episode_at(episodes: Sequence[Episode], tick: int) -> Episode | None:
    return next((episode for episode in episodes if episode.first <= tick < episode.end), None)
