"""Client-side rate limits for the outside APIs the pipeline reads, kept per process or shared on the host.

An API counts requests per account, not per process: two runs that each kept 10 requests/s would send 20.
`SharedBudgets` keeps an account's budgets in one SQLite file in a folder, so every process (and every thread
in it) that points at the folder draws from the same budget. `ProcessBudgets` keeps them in memory for plain
library use. Nothing is shared across hosts. Each source names its budgets (WattTime: requests and logins;
Electricity Maps: requests) and builds them from `spaced_rate` and `window_rate`.
"""

import hashlib
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from math import ceil
from pathlib import Path

from filelock import FileLock
from pyrate_limiter import Duration, InMemoryBucket, Limiter, Rate, RateItem, SQLiteBucket

# The share of the account's request rate kept free, for requests held up between their permit and arrival.
HEADROOM = 0.1
ACCOUNT_HASH_LENGTH = 16  # hex digits of SHA-256: enough to keep accounts apart, says nothing about the account


class Budgets(ABC):
    """Named budgets of one account; `take` blocks the caller until the named one has room for one more."""

    @abstractmethod
    def take(self, name: str) -> None:
        """Take one permit of budget `name`, waiting as long as it needs."""

    @abstractmethod
    def close(self) -> None:
        """Release what the budgets hold open."""


class ProcessBudgets(Budgets):
    """In-memory sliding windows: the budgets hold for the threads of one client only."""

    def __init__(self, rates: Mapping[str, Rate]) -> None:
        self._limiters = {name: Limiter(InMemoryBucket([rate])) for name, rate in rates.items()}

    def take(self, name: str) -> None:
        self._limiters[name].try_acquire(name)

    def close(self) -> None:
        """Stops the limiters' background leak threads."""
        for limiter in self._limiters.values():
            limiter.close()


class SharedBudgets(Budgets):
    """The budgets in `<folder>/<hash of the account>.sqlite`, shared by every process and thread using it.

    pyrate-limiter's own blocking loop is not used here: after sleeping it advances the item's timestamp by the
    planned delay instead of reading the clock again, so a thread that also waited for the lock records a time
    earlier than its real send, and other processes then see a window with room that is not there. Here every
    attempt reads the clock, checks and records under one lock (a thread lock, then an exclusive file lock for
    the other processes), and sleeps without holding it. Only the account's hash reaches the disk.
    """

    def __init__(self, folder: Path, account: str, rates: Mapping[str, Rate]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{account_file_stem(account)}.sqlite"
        self._thread_lock = threading.Lock()
        # Not thread-local: the thread lock already admits one thread at a time to this file lock.
        self._file_lock = FileLock(f"{path}.lock", thread_local=False)
        with self._file_lock:
            self._buckets = {name: _bucket(path, name, rate) for name, rate in rates.items()}

    def take(self, name: str) -> None:
        bucket = self._buckets[name]
        while True:
            with self._thread_lock, self._file_lock:
                now = time.time_ns() // 1_000_000
                item = RateItem(name, now)
                if bucket.put(item):
                    bucket.leak(now)  # rows older than the window; indexed, so cheap
                    return
                wait_ms = bucket.waiting(item)
            assert isinstance(wait_ms, int)
            time.sleep(max(wait_ms, 1) / 1000)

    def close(self) -> None:
        with self._thread_lock:
            for bucket in self._buckets.values():
                bucket.close()


def account_file_stem(account: str) -> str:
    """A short, stable name for the account's limits file; the account name (or token) is never written."""
    return hashlib.sha256(account.encode()).hexdigest()[:ACCOUNT_HASH_LENGTH]


def spaced_rate(requests_per_second: float) -> Rate:
    """One permit every 1/rate seconds plus HEADROOM (whole milliseconds, rounded up): 110 ms at 10/s.

    APIs count requests where they arrive. A window of 10 per second lets ten permits go at its start and ten
    more at the next one, and permits exactly 1/rate apart put an eleventh arrival within one second as soon
    as one request is held up a millisecond longer than the one ten before it, as requests are on a busy host
    (permit, then the send, then the server's own scheduling). The headroom absorbs a hold-up of up to a
    whole spacing, for a tenth less throughput.
    """
    if requests_per_second > 1000:
        raise ValueError(f"requests_per_second {requests_per_second} is above 1 a millisecond")
    return Rate(1, ceil(int(Duration.SECOND) * (1 + HEADROOM) / requests_per_second))


def window_rate(limit: int, window_seconds: float) -> Rate:
    """`limit` permits in any `window_seconds`, for budgets an API states per window (WattTime's logins)."""
    return Rate(limit, int(Duration.SECOND * window_seconds))


def account_budgets(folder: Path | None, account: str, rates: Mapping[str, Rate]) -> Budgets:
    """The account's budgets: shared through `folder` by every process on the host, else this client's own."""
    if folder is None:
        return ProcessBudgets(rates)
    return SharedBudgets(folder, account, rates)


def _bucket(path: Path, table: str, rate: Rate) -> SQLiteBucket:
    """One table per budget in the account's file; WAL so readers never block the writer holding the lock."""
    bucket = SQLiteBucket.init_from_file([rate], table=table, db_path=str(path))
    bucket.conn.execute("PRAGMA journal_mode=WAL")
    return bucket
