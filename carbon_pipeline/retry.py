"""One retry policy for every outside system the pipeline calls: WattTime, Electricity Maps, InfluxDB, the webhook.

A failed call is repeated only while both limits hold, a number of attempts and a total time budget,
whichever runs out first. Between attempts it waits with full-jitter exponential backoff, so clients
that failed together do not come back together, unless the server said how long to wait with
``Retry-After`` (RFC 9110: delay-seconds or an HTTP-date), which is honoured up to what is left of the
budget: a server asking for an hour never holds a run past its budget.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, stop_after_delay
from tenacity.wait import wait_random_exponential

# RFC 9110 delay-seconds are whole; a fraction is tolerated, a sign or an exponent is not a delay.
_DELAY_SECONDS = re.compile(r"\d+(\.\d+)?")


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait for a ``Retry-After`` value, or None when there is none worth trusting.

    A date in the past means "now" (0 s); anything unreadable falls back to backoff.
    """
    if value is None:
        return None
    value = value.strip()
    if _DELAY_SECONDS.fullmatch(value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long one call may be repeated, and how long to wait in between.

    The backoff before retry ``n`` is uniform in ``[0, min(backoff_max_seconds, backoff_base_seconds *
    2 ** (n - 1))]`` ("full jitter"). A failure that carries the server's ``Retry-After`` header value as
    its ``retry_after`` attribute (influxdb3-python's ``InfluxDBError`` does; our own transient failures
    follow suit) waits that long instead. Every wait is cut to what is left of ``budget_seconds``.
    """

    max_attempts: int
    budget_seconds: float
    backoff_base_seconds: float
    backoff_max_seconds: float

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.budget_seconds < 0:
            raise ValueError(f"the retry budget must be >= 0 seconds, got {self.budget_seconds}")
        if self.backoff_base_seconds < 0 or self.backoff_max_seconds < 0:
            raise ValueError(
                f"backoff seconds must be >= 0, got base {self.backoff_base_seconds}, max {self.backoff_max_seconds}"
            )

    def retrying(
        self,
        retryable: Callable[[BaseException], bool],
        *,
        before_sleep: Callable[[RetryCallState], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        give_up: Callable[[RetryCallState], Any] | None = None,
    ) -> Retrying:
        """A tenacity ``Retrying`` for one call: it repeats failures ``retryable`` accepts within this policy.

        When the policy runs out, ``give_up`` decides what the caller sees (it usually raises a typed error);
        without it the last failure is raised as it was.
        """
        return Retrying(
            retry=retry_if_exception(retryable),
            stop=stop_after_attempt(self.max_attempts) | stop_after_delay(self.budget_seconds),
            wait=self.wait_seconds,
            sleep=sleep,
            before_sleep=before_sleep,
            retry_error_callback=give_up,
            reraise=give_up is None,
        )

    def wait_seconds(self, state: RetryCallState) -> float:
        """The server's ``Retry-After`` if it gave a readable one, else full-jitter backoff; within the budget."""
        failure = state.outcome.exception() if state.outcome is not None else None
        wanted = retry_after_seconds(_retry_after_header(failure))
        if wanted is None:
            wanted = self._backoff(state)
        return max(0.0, min(wanted, self.budget_seconds - elapsed_seconds(state)))

    def _backoff(self, state: RetryCallState) -> float:
        return wait_random_exponential(multiplier=self.backoff_base_seconds, max=self.backoff_max_seconds)(state)

    def describe(self) -> str:
        """The limits, for the message of a call that gave up."""
        return f"{self.max_attempts} attempts, {self.budget_seconds:g} s"


def elapsed_seconds(state: RetryCallState) -> float:
    """Time since the call's first attempt started, on tenacity's own (monotonic) clock."""
    return time.monotonic() - state.start_time


def _retry_after_header(failure: BaseException | None) -> str | None:
    value = getattr(failure, "retry_after", None)
    return None if value is None else str(value)
