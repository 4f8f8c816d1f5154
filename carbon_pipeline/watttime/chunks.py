"""Long WattTime windows as calls WattTime accepts: cut in chunks, asked with inclusive bounds, fetched concurrently.

`/v3/historical` takes at most 32 days of `point_time` per call and `/v3/forecast/historical` at most 24 h of
`generated_at`, both with inclusive `start` and `end`. A half-open window [start, end) is cut into chunks of
at most the endpoint's size, and each chunk [a, b) is asked for as [a, b - 1 s], so adjacent chunks never share
an edge point. One cut serves every chunked endpoint, so they cannot drift apart.
"""

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from typing import TypeVar

from carbon_pipeline.watttime.endpoints import require, require_utc
from carbon_pipeline.watttime.transport import Abandoned

# WattTime bounds are inclusive, so a half-open window [a, b) is requested as [a, b - 1 s]: adjacent
# windows then never share an edge point.
INCLUSIVE_END_TRIM = timedelta(seconds=1)

Window = tuple[datetime, datetime]
_T = TypeVar("_T")


def chunk_windows(start: datetime, end: datetime, size: timedelta) -> Iterator[Window]:
    """Consecutive half-open windows of at most `size` that exactly cover [start, end)."""
    chunk_start = start
    while chunk_start < end:
        chunk_end = min(chunk_start + size, end)
        yield chunk_start, chunk_end
        chunk_start = chunk_end


def inclusive_bounds(window: Window) -> tuple[str, str]:
    """The `start` and `end` parameters that ask an inclusive-bounds endpoint for the half-open `window`."""
    start, end = window
    return start.isoformat(), max(start, end - INCLUSIVE_END_TRIM).isoformat()


def fetch_concurrently(
    windows: list[Window], fetch: Callable[[Window, threading.Event], _T], max_workers: int
) -> list[_T]:
    """Run `fetch` for every window on a few threads; results in window order, or the first failure raised.

    One at a time a year of history costs a dozen round trips end to end, so the chunks of a long window are
    fetched side by side. A failed chunk fails the whole call with its own error, as a one-at-a-time fetch
    would: the first failure sets `abort`, which every later request, retry wait and login of this call
    checks, so a doomed call stops sending requests, and the call returns only once none is in flight.
    """
    abort = threading.Event()
    if len(windows) == 1:
        return [fetch(windows[0], abort)]
    failures: list[BaseException] = []

    def fetch_or_abort(window: Window) -> _T:
        try:
            return fetch(window, abort)
        except Abandoned:
            raise
        except BaseException as failure:
            failures.append(failure)  # before `abort` is set, so failures[0] is the first one
            abort.set()
            raise

    pool = ThreadPoolExecutor(max_workers=min(max_workers, len(windows)), thread_name_prefix="watttime-chunk")
    futures: list[Future[_T]] = []
    try:
        futures.extend(pool.submit(fetch_or_abort, window) for window in windows)
        wait(futures, return_when=FIRST_EXCEPTION)
    finally:
        abort.set()  # stops what is left after a failure, or when the caller is interrupted while it waits
        pool.shutdown(wait=True, cancel_futures=True)
    if failures:
        raise failures[0]
    return [future.result() for future in futures]


def requested_windows(start: datetime, end: datetime, size: timedelta) -> list[Window]:
    """Check a half-open window before any request, then cut it into chunks of at most `size`."""
    start, end = require_utc(start, "start"), require_utc(end, "end")
    require(end > start, f"end ({end.isoformat()}) must be after start ({start.isoformat()})")
    return list(chunk_windows(start, end, size))
