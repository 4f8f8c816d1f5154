"""WattTime's per-account limits, kept per process or shared by every process on the host that uses one folder.

WattTime counts requests and logins per account, not per process: two runs that each kept 10 requests/s would
send 20. `SharedLimits` keeps both budgets in one SQLite file per account in a folder, so every process (and
every thread in it) that points at the folder draws from the same budget. `ProcessLimits` keeps them in memory
for plain library use. Nothing is shared across hosts.
"""

import hashlib
import threading
import time
from abc import ABC, abstractmethod
from math import ceil
from pathlib import Path

from filelock import FileLock
from pyrate_limiter import Duration, InMemoryBucket, Limiter, Rate, RateItem, SQLiteBucket

from carbon_pipeline.watttime.endpoints import require

REQUEST = "request"
LOGIN = "login"
# The share of the account's request rate kept free, for requests held up between their permit and arrival.
HEADROOM = 0.1
ACCOUNT_HASH_LENGTH = 16  # hex digits of SHA-256: enough to keep accounts apart, says nothing about the name


class WattTimeLimits(ABC):
    """Blocks each caller until the account has room for one more request (or login)."""

    @abstractmethod
    def wait_for_request(self) -> None:
        """Take one request permit, waiting as long as the budget needs."""

    @abstractmethod
    def wait_for_login(self) -> None:
        """Take one login permit (the login also takes a request permit)."""

    @abstractmethod
    def close(self) -> None:
        """Release what the limits hold open."""


class ProcessLimits(WattTimeLimits):
    """In-memory sliding windows: the budget holds for the threads of one client only."""

    def __init__(self, requests_per_second: float, login_limit: int, login_window_seconds: float) -> None:
        self._requests = Limiter(InMemoryBucket([request_rate(requests_per_second)]))
        self._logins = Limiter(InMemoryBucket([login_rate(login_limit, login_window_seconds)]))

    def wait_for_request(self) -> None:
        self._requests.try_acquire(REQUEST)

    def wait_for_login(self) -> None:
        self._logins.try_acquire(LOGIN)

    def close(self) -> None:
        """Stops the limiters' background leak threads."""
        self._requests.close()
        self._logins.close()


class SharedLimits(WattTimeLimits):
    """Both budgets in `<folder>/<hash of the username>.sqlite`, shared by every process and thread using it.

    pyrate-limiter's own blocking loop is not used here: after sleeping it advances the item's timestamp by the
    planned delay instead of reading the clock again, so a thread that also waited for the lock records a time
    earlier than its real send, and other processes then see a window with room that is not there. Here every
    attempt reads the clock, checks and records under one lock (a thread lock, then an exclusive file lock for
    the other processes), and sleeps without holding it. Only the username's hash reaches the disk.
    """

    def __init__(
        self,
        folder: Path,
        username: str,
        *,
        requests_per_second: float,
        login_limit: int,
        login_window_seconds: float,
    ) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{account_file_stem(username)}.sqlite"
        self._thread_lock = threading.Lock()
        # Not thread-local: the thread lock already admits one thread at a time to this file lock.
        self._file_lock = FileLock(f"{path}.lock", thread_local=False)
        with self._file_lock:
            self._requests = _bucket(path, REQUEST, request_rate(requests_per_second))
            self._logins = _bucket(path, LOGIN, login_rate(login_limit, login_window_seconds))

    def wait_for_request(self) -> None:
        self._take(self._requests, REQUEST)

    def wait_for_login(self) -> None:
        self._take(self._logins, LOGIN)

    def close(self) -> None:
        with self._thread_lock:
            self._requests.close()
            self._logins.close()

    def _take(self, bucket: SQLiteBucket, name: str) -> None:
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


def account_file_stem(username: str) -> str:
    """A short, stable name for the account's limits file; the username itself is never written."""
    return hashlib.sha256(username.encode()).hexdigest()[:ACCOUNT_HASH_LENGTH]


def request_rate(requests_per_second: float) -> Rate:
    """One permit every 1/rate seconds plus HEADROOM (whole milliseconds, rounded up): 110 ms at 10/s.

    WattTime counts requests where they arrive. A window of 10 per second lets ten permits go at its start
    and ten more at the next one, and permits exactly 1/rate apart put an eleventh arrival within one second
    as soon as one request is held up a millisecond longer than the one ten before it, as requests are on a
    busy host (permit, then the send, then the server's own scheduling). The headroom absorbs a hold-up of up
    to a whole spacing, for a tenth less throughput.
    """
    require(requests_per_second <= 1000, f"requests_per_second {requests_per_second} is above 1 a millisecond")
    return Rate(1, ceil(int(Duration.SECOND) * (1 + HEADROOM) / requests_per_second))


def login_rate(login_limit: int, login_window_seconds: float) -> Rate:
    return Rate(login_limit, int(Duration.SECOND * login_window_seconds))


def _bucket(path: Path, table: str, rate: Rate) -> SQLiteBucket:
    """One table per budget in the account's file; WAL so readers never block the writer holding the lock."""
    bucket = SQLiteBucket.init_from_file([rate], table=table, db_path=str(path))
    bucket.conn.execute("PRAGMA journal_mode=WAL")
    return bucket


def account_limits(
    folder: Path | None, username: str, requests_per_second: float, login_limit: int, login_window_seconds: float
) -> WattTimeLimits:
    """The account's budgets: shared through `folder` by every process on the host, else this client's own."""
    if folder is None:
        return ProcessLimits(requests_per_second, login_limit, login_window_seconds)
    return SharedLimits(
        folder,
        username,
        requests_per_second=requests_per_second,
        login_limit=login_limit,
        login_window_seconds=login_window_seconds,
    )
