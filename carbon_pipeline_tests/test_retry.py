"""The one retry policy of WattTime, InfluxDB and the alert webhook: Retry-After, full-jitter backoff and limits.

The policy runs real tenacity retries of a call that fails as told; waits are recorded instead of slept,
except where the budget itself is what is tested.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from tenacity import RetryCallState

from carbon_pipeline.retry import RetryPolicy, retry_after_seconds

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)
ROOMY = {"max_attempts": 10, "budget_seconds": 1_000.0}


class Refused(Exception):
    """A retryable failure; like InfluxDB's errors, it carries the server's Retry-After header as sent."""

    def __init__(self, retry_after: str | None = None) -> None:
        super().__init__(f"refused (Retry-After: {retry_after})")
        self.retry_after = retry_after


class Broken(Exception):
    """A failure no retry can fix."""


@dataclass
class Flaky:
    """A call that raises its failures in turn, then succeeds; counts how often it was called."""

    failures: list[BaseException]
    calls: int = 0
    waits: list[float] = field(default_factory=list)

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "done"


def run(policy: RetryPolicy, call: Flaky, *, sleep: bool = False) -> str:
    """Run ``call`` under ``policy``, recording each wait (and sleeping it only when asked)."""

    def wait(seconds: float) -> None:
        call.waits.append(seconds)
        if sleep:
            time.sleep(seconds)

    result: str = policy.retrying(lambda error: isinstance(error, Refused), sleep=wait)(call)
    return result


def policy(**limits: float) -> RetryPolicy:
    settings = {"backoff_base_seconds": 1.0, "backoff_max_seconds": 30.0, **ROOMY} | limits
    return RetryPolicy(
        max_attempts=int(settings["max_attempts"]),
        budget_seconds=settings["budget_seconds"],
        backoff_base_seconds=settings["backoff_base_seconds"],
        backoff_max_seconds=settings["backoff_max_seconds"],
    )


def http_date(when: datetime) -> str:
    return email.utils.format_datetime(when, usegmt=True)


# ##### TESTS: reading Retry-After


@pytest.mark.parametrize(("value", "seconds"), [("0", 0.0), ("7", 7.0), ("120", 120.0), (" 30 ", 30.0), ("1.5", 1.5)])
def test_retry_after_in_seconds(value: str, seconds: float) -> None:
    assert retry_after_seconds(value, now=NOW) == seconds


@pytest.mark.parametrize(
    "value",
    [
        http_date(NOW + timedelta(seconds=90)),  # IMF-fixdate, what servers send
        "Sunday, 01-Jun-25 12:01:30 GMT",  # obsolete RFC 850 form, which RFC 9110 still asks recipients to read
        "Sun Jun  1 12:01:30 2025",  # obsolete asctime form, GMT by definition
    ],
)
def test_retry_after_as_an_http_date_counts_from_now(value: str) -> None:
    assert retry_after_seconds(value, now=NOW) == 90.0


def test_a_retry_after_date_in_the_past_means_retry_now() -> None:
    assert retry_after_seconds(http_date(NOW - timedelta(hours=1)), now=NOW) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "+5", "1e3", "inf", "nan", "0x10", "Mon, 99 Foo 2025"])
def test_garbage_retry_after_is_ignored(value: str | None) -> None:
    assert retry_after_seconds(value, now=NOW) is None


# ##### TESTS: waiting


def test_retry_after_seconds_are_waited_instead_of_backing_off() -> None:
    call = Flaky([Refused("7")])
    assert run(policy(backoff_max_seconds=0.01), call) == "done"
    assert call.waits == [7.0]


def test_retry_after_http_date_is_waited_until() -> None:
    call = Flaky([Refused(http_date(datetime.now(UTC) + timedelta(seconds=30)))])
    run(policy(backoff_max_seconds=0.01), call)
    (wait,) = call.waits
    assert 28.0 <= wait <= 30.0  # HTTP-dates have whole-second resolution


def test_garbage_retry_after_backs_off_instead() -> None:
    call = Flaky([Refused("soon")])
    run(policy(backoff_base_seconds=0.5, backoff_max_seconds=0.5), call)
    (wait,) = call.waits
    assert 0.0 <= wait <= 0.5


def test_retry_after_is_capped_by_what_is_left_of_the_budget() -> None:
    call = Flaky([Refused("3600"), Refused(http_date(datetime.now(UTC) + timedelta(days=1)))])
    run(policy(budget_seconds=5.0), call)
    assert len(call.waits) == 2
    assert all(0.0 <= wait <= 5.0 for wait in call.waits)
    assert call.waits[0] > 4.0  # the budget, less the moment the first attempt took


def test_backoff_is_full_jitter_within_exponential_bounds() -> None:
    random.seed(20250601)
    windows = [min(10.0, 2.0**retry) for retry in range(7)]  # base 1 s doubling, capped at 10 s
    samples: list[list[float]] = [[] for _ in windows]
    for _ in range(200):
        call = Flaky([Refused() for _ in windows])
        run(policy(backoff_base_seconds=1.0, backoff_max_seconds=10.0), call)
        for retry, wait in enumerate(call.waits):
            samples[retry].append(wait)
    for window, waits in zip(windows, samples, strict=True):
        assert len(waits) == 200
        assert all(0.0 <= wait <= window for wait in waits)
        # Full jitter spreads waits over the whole window, instead of every client waiting the same time.
        assert min(waits) < 0.1 * window and max(waits) > 0.9 * window


# ##### TESTS: stopping


def test_attempts_stop_the_retries_and_the_last_failure_is_raised() -> None:
    last = Refused("0")
    call = Flaky([Refused("0"), Refused("0"), last, Refused("0")])
    with pytest.raises(Refused) as raised:
        run(policy(max_attempts=3), call)
    assert raised.value is last
    assert call.calls == 3 and len(call.waits) == 2


def test_the_budget_stops_the_retries_before_the_attempts_do() -> None:
    """The first wait, asked for a minute, is cut to the 0.2 s budget; after it, no attempt is left in the budget."""
    call = Flaky([Refused("60") for _ in range(100)])
    with pytest.raises(Refused):
        run(policy(max_attempts=100, budget_seconds=0.2), call, sleep=True)
    assert call.calls == 2


def test_a_failure_retrying_cannot_fix_is_raised_at_once() -> None:
    call = Flaky([Broken()])
    with pytest.raises(Broken):
        run(policy(), call)
    assert call.calls == 1 and call.waits == []


def test_give_up_decides_what_the_caller_sees() -> None:
    class Unavailable(Exception):
        pass

    def give_up(state: RetryCallState) -> str:
        raise Unavailable(f"gave up after {state.attempt_number} attempt(s)")

    retrying = policy(max_attempts=2).retrying(
        lambda error: isinstance(error, Refused), sleep=lambda _: None, give_up=give_up
    )
    with pytest.raises(Unavailable, match=r"gave up after 2 attempt\(s\)"):
        retrying(Flaky([Refused(), Refused(), Refused()]))


@pytest.mark.parametrize(
    ("limits", "named"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"budget_seconds": -1.0}, "budget"),
        ({"backoff_base_seconds": -0.1}, "backoff"),
    ],
)
def test_impossible_limits_are_refused(limits: dict[str, float], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        policy(**limits)
