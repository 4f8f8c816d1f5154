"""Configuration and the thread-safe state of the simulated Electricity Maps API: tokens, rate, faults, counts."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from carbon_pipeline.electricitymaps.simulator.values import ZONES, Zone, synthetic_zones

FREE = "free"
PAID = "paid"
FREE_TOKEN = "simulator-free-token"
PAID_TOKEN = "simulator-paid-token"
FAULT_KINDS = frozenset({"status", "nulls", "out_of_range", "truncated"})


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _default_tokens() -> Mapping[str, str]:
    return MappingProxyType({FREE_TOKEN: FREE, PAID_TOKEN: PAID})


@dataclass(frozen=True)
class Fault:
    """One queued failure for the next `count` requests to `path` (None: any data path).

    status: reply `status` (default 500) with an error body, and `Retry-After` when given; nulls: the first
    point's carbonIntensity is null; out_of_range: the first point's carbonIntensity is -5; truncated: the
    reply's last point is left out (a forecast shorter than asked for).
    """

    kind: str
    status: int = 500
    count: int = 1
    path: str | None = None
    retry_after: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {', '.join(sorted(FAULT_KINDS))}")
        if self.count < 1:
            raise ValueError("count must be >= 1")


@dataclass(frozen=True)
class SimulatorConfig:
    """Tokens and their plans (free: latest and the last 24 h of one zone, hourly; paid: every endpoint,
    zone and granularity), the rate limit per token, and how many recent hours are still estimates."""

    tokens: Mapping[str, str] = field(default_factory=_default_tokens)
    free_plan_zone: str = "DE"
    rate_limit: int = 1000
    rate_window_seconds: float = 1.0
    estimated_hours: int = 2
    synthetic_zones: int = 0
    clock: Callable[[], datetime] = _utc_now


class SimulatorState:
    """What every request thread shares; the rate windows run on the real clock, as Retry-After does."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.zones: Mapping[str, Zone] = MappingProxyType(ZONES | synthetic_zones(self.config.synthetic_zones))
        self._lock = threading.Lock()
        self._arrivals: defaultdict[str, deque[float]] = defaultdict(deque)
        self._faults: list[Fault] = []
        self._requests: Counter[str] = Counter()
        self._arrival_times: list[float] = []
        self._statuses: Counter[int] = Counter()
        self._faults_applied: Counter[str] = Counter()

    def now(self) -> datetime:
        return self.config.clock()

    def plan_of(self, token: str) -> str | None:
        return self.config.tokens.get(token) if token else None

    def admit(self, token: str, monotonic_now: float) -> float | None:
        """Counts the request against the token's window; the seconds to wait when it is over the rate."""
        window = self._arrivals[token]
        with self._lock:
            while window and monotonic_now - window[0] >= self.config.rate_window_seconds:
                window.popleft()
            if len(window) >= self.config.rate_limit:
                return self.config.rate_window_seconds - (monotonic_now - window[0])
            window.append(monotonic_now)
            return None

    def count_request(self, path: str) -> None:
        """Counts a data request as it arrives, refused or not, at its real `time.monotonic()`."""
        with self._lock:
            self._requests[path] += 1
            self._arrival_times.append(time.monotonic())

    def record_status(self, status: int) -> None:
        with self._lock:
            self._statuses[status] += 1

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def take_fault(self, path: str, kinds: frozenset[str]) -> Fault | None:
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.kind in kinds and fault.path in (None, path):
                    if fault.count == 1:
                        del self._faults[index]
                    else:
                        self._faults[index] = Fault(**{**asdict(fault), "count": fault.count - 1})
                    self._faults_applied[fault.kind] += 1
                    return fault
        return None

    def stats(self) -> dict[str, Any]:
        """Requests per path, reply statuses, faults applied and every data request's arrival (monotonic seconds,
        to count requests per second or hour), as the control surface reports them."""
        with self._lock:
            return {
                "requests": dict(self._requests),
                "arrivals": list(self._arrival_times),
                "statuses": dict(self._statuses),
                "faults_applied": dict(self._faults_applied),
            }


def retry_after_header(wait_seconds: float) -> str:
    """Whole seconds, rounded up, as RFC 9110 delay-seconds are."""
    return str(max(1, math.ceil(wait_seconds)))


def floor_to(moment: datetime, step: timedelta) -> datetime:
    seconds = step.total_seconds()
    return datetime.fromtimestamp(math.floor(moment.timestamp() / seconds) * seconds, UTC)
