"""Regions worked on a few at a time, and a run that can still be terminated while they are.

A tick of a hundred regions is a hundred WattTime round trips: side by side they take seconds instead of
minutes. Terminating a run from the UI interrupts its main thread, but a pool left by its ``with`` block
waits for every request in flight (up to the client's timeout) before the interrupt can end the run. On
an interrupt the pool is left to finish those requests on its own and the regions not yet started are
dropped: the run records nothing after the interrupt, so whatever a leftover thread still stores is
rewritten, identically, by the run that fills those intervals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ALL_COMPLETED, ThreadPoolExecutor, wait
from typing import TypeVar

MAX_CONCURRENT_REGIONS = 4
# The interrupt may reach another thread than the main one; the main thread sees it when it next runs
# Python code, so it waits on the regions in slices this long rather than for as long as they take.
INTERRUPT_CHECK_SECONDS = 0.2

_In = TypeVar("_In")
_Out = TypeVar("_Out")


def map_regions(work: Callable[[_In], _Out], regions: Iterable[_In], name: str) -> list[_Out]:
    """``work`` on every item of ``regions``, at most MAX_CONCURRENT_REGIONS at once; results in order."""
    items = list(regions)
    pool = ThreadPoolExecutor(max(1, min(MAX_CONCURRENT_REGIONS, len(items))), thread_name_prefix=name)
    try:
        futures = [pool.submit(work, item) for item in items]
        while wait(futures, timeout=INTERRUPT_CHECK_SECONDS, return_when=ALL_COMPLETED).not_done:
            pass
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return [future.result() for future in futures]
