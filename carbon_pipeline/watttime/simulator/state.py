"""Configuration and the mutable, thread-safe state behind the simulated WattTime API."""

from __future__ import annotations

import copy
import secrets
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from carbon_pipeline.watttime.simulator.catalogue import REGIONS, SIGNAL_REGIONS, Region, synthetic_regions
from carbon_pipeline.watttime.simulator.faults import Fault

SIMULATOR_USERNAME = "simulator"
SIMULATOR_PASSWORD = "simulator-password"
FREE_PLAN_REGIONS = frozenset({"CAISO_NORTH"})
RATE_WINDOW_SECONDS = 300.0
FORECAST_ARCHIVE_START = datetime(2020, 1, 1, tzinfo=UTC)
# The query parameters of every call to these paths are kept, so tests can check chunk bounds.
RECORDED_QUERIES = {"/v3/historical": "historical_queries", "/v3/forecast/historical": "forecast_historical_queries"}


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _default_accounts() -> Mapping[str, str]:
    return MappingProxyType({SIMULATOR_USERNAME: SIMULATOR_PASSWORD})


@dataclass(frozen=True)
class SimulatorConfig:
    """Knobs of the simulated account and API; `clock` lets tests freeze or advance time.

    `model_date` is the newest model, the one served when a request names none; `older_model_dates` are the
    earlier versions a request may pin with `model=`. `forecast_regions` limits which regions the account may
    read forecasts for (None: all it may read at all), and `forecast_archive_start` is the oldest
    `generated_at` /v3/forecast/historical keeps.

    `index_within_plan` limits /v3/signal-index to the regions the plan covers; by default every account reads
    the index of every region, as Home Assistant's docs say it is for all plan levels (WattTime does not
    confirm that for v3).

    `revision_share` of /v3/historical's points (0 to 1, chosen by a seeded hash of region and time, so the same
    points in every run) get a new value `revision_delay_seconds` after they were published; 0, the default,
    revises nothing. With revisions on, every point carries `last_updated`; without, only the points of a
    request that asks `updated_since`.
    """

    accounts: Mapping[str, str] = field(default_factory=_default_accounts)
    plan_regions: frozenset[str] | None = None
    token_ttl_seconds: float = 1800
    publication_lag_seconds: float = 120
    latency_seconds: float = 0.0
    model_date: str = "2023-03-01"
    older_model_dates: tuple[str, ...] = ("2022-10-01",)
    forecast_regions: frozenset[str] | None = None
    forecast_archive_start: datetime = FORECAST_ARCHIVE_START
    index_within_plan: bool = False
    data_rate_limit: int = 3000
    login_rate_limit: int = 100
    # Extra regions SYNTH_000, SYNTH_001, ... beside the real catalogue, for load tests with many regions.
    synthetic_regions: int = 0
    revision_share: float = 0.0
    revision_delay_seconds: float = 6 * 3600
    clock: Callable[[], datetime] = _utc_now

    def __post_init__(self) -> None:
        if not 0 <= self.revision_share <= 1:
            raise ValueError("revision_share must be between 0 and 1")
        if self.revision_delay_seconds < 0:
            raise ValueError("revision_delay_seconds must not be negative")


class SimulatorState:
    """Accounts, tokens, rate windows, queued faults and statistics, shared by all request threads."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        synthetic = synthetic_regions(self.config.synthetic_regions)
        self._signal_regions = {
            signal: MappingProxyType(catalogue | synthetic) for signal, catalogue in SIGNAL_REGIONS.items()
        }
        self.regions: Mapping[str, Region] = MappingProxyType(REGIONS | synthetic)
        self.models: tuple[str, ...] = (self.config.model_date, *self.config.older_model_dates)
        self._lock = threading.Lock()
        self._passwords = dict(self.config.accounts)
        self._registered: set[str] = set()
        self._tokens: dict[str, tuple[str, datetime]] = {}
        self._issued: list[str] = []
        self._windows: defaultdict[tuple[str, str], deque[datetime]] = defaultdict(deque)
        self._faults: list[Fault] = []
        self._in_flight = 0
        self._stats = self._empty_stats()

    def now(self) -> datetime:
        return self.config.clock()

    def signal_regions(self, signal_type: str) -> Mapping[str, Region]:
        """The regions served for a signal type; `regions` is co2_moer's."""
        return self._signal_regions[signal_type]

    def has_forecast_access(self, region: str) -> bool:
        forecast_regions = self.config.forecast_regions
        return forecast_regions is None or region in forecast_regions

    def has_index_access(self, username: str, region: str) -> bool:
        """Whether the account may read the region's signal index: any region, unless limited to the plan."""
        plan = self.plan_regions(username)
        return not self.config.index_within_plan or plan is None or region in plan

    def register(self, username: str, password: str) -> bool:
        """False when the username is taken; new accounts get the free plan, like real sign-ups."""
        with self._lock:
            if username in self._passwords:
                return False
            self._passwords[username] = password
            self._registered.add(username)
            return True

    def login(self, username: str, password: str) -> str | None:
        with self._lock:
            known = self._passwords.get(username)
            if known is None or not secrets.compare_digest(known.encode(), password.encode()):
                return None
            token = secrets.token_urlsafe(32)
            expiry = self.now() + timedelta(seconds=self.config.token_ttl_seconds)
            self._tokens[token] = (username, expiry)
            self._issued.append(token)
            self._stats["logins"] += 1
            return token

    def issued_tokens(self) -> tuple[str, ...]:
        """Every token a login handed out, expired and forgotten ones included, oldest first: they are
        credentials too, and tests look for them where secrets must never appear. Not in ``stats``,
        which the control endpoint serves."""
        with self._lock:
            return tuple(self._issued)

    def user_for_token(self, token: str) -> str | None:
        """The token's owner while it is valid; expired tokens are forgotten."""
        with self._lock:
            entry = self._tokens.get(token)
            if entry is None:
                return None
            username, expiry = entry
            if self.now() < expiry:
                return username
            del self._tokens[token]
            return None

    def plan_regions(self, username: str) -> frozenset[str] | None:
        """Regions the account may read; None means the whole catalogue."""
        with self._lock:
            return FREE_PLAN_REGIONS if username in self._registered else self.config.plan_regions

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def allow(self, bucket: str, key: str, limit: int) -> bool:
        """Rolling-window rate limit; refused requests do not count against the window."""
        with self._lock:
            now = self.now()
            window = self._windows[(bucket, key)]
            while window and (now - window[0]).total_seconds() >= RATE_WINDOW_SECONDS:
                window.popleft()
            if len(window) >= limit:
                return False
            window.append(now)
            return True

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def take_fault(self, path: str, *, data_level: bool, region: str | None = None) -> Fault | None:
        """Consumes one use of the oldest matching fault of the requested level."""
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.data_level == data_level and fault.matches(path, region):
                    if fault.count == 1:
                        del self._faults[index]
                    else:
                        self._faults[index] = replace(fault, count=fault.count - 1)
                    self._stats["faults_applied"][fault.kind] += 1
                    return fault
            return None

    @contextmanager
    def serving(self, path: str, params: Mapping[str, str]) -> Iterator[None]:
        """Counts an API request for as long as it is being served, so clients' concurrency can be checked."""
        with self._lock:
            self._stats["requests"][path] += 1
            self._stats["arrivals"][path].append(time.monotonic())
            if path in RECORDED_QUERIES:
                self._stats[RECORDED_QUERIES[path]].append(dict(params))
            self._in_flight += 1
            self._stats["in_flight_peak"] = max(self._stats["in_flight_peak"], self._in_flight)
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    def record_status(self, status: int) -> None:
        with self._lock:
            self._stats["statuses"][status] += 1

    def stats(self) -> dict[str, Any]:
        """A copy of the counters, so tests can assert what a client really sent.

        Keys: logins, requests (per path), statuses (int keys; strings once sent as JSON), faults_applied
        (per kind), historical_queries and forecast_historical_queries (the params of every /v3/historical
        and /v3/forecast/historical call, to check chunk bounds),
        arrivals (per path, the `time.monotonic()` of each request as it arrived, real time even when the
        simulated clock is frozen, to count requests per second) and in_flight_peak (the most API requests
        served at once).
        """
        with self._lock:
            return copy.deepcopy(self._stats)

    def reset_stats(self) -> None:
        with self._lock:
            self._stats = self._empty_stats()

    @staticmethod
    def _empty_stats() -> dict[str, Any]:
        return {
            "logins": 0,
            "requests": Counter(),
            "statuses": Counter(),
            "faults_applied": Counter(),
            "historical_queries": [],
            "forecast_historical_queries": [],
            "arrivals": defaultdict(list),
            "in_flight_peak": 0,
        }
