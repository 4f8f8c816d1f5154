"""HTTP to WattTime within its limits: a cap on requests in flight, client-side rate limits, bounded retries.

WattTime allows 3,000 requests and 100 logins per 5 minutes and answers overload with 429/5xx; this layer
keeps under the limits whichever threads send, repeats transient failures under the pipeline's one retry
policy (`carbon_pipeline.retry`), and tells an untrusted certificate apart from an outage.
"""

import logging
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import httpx
from tenacity import RetryCallState

from carbon_pipeline.retry import RetryPolicy, elapsed_seconds
from carbon_pipeline.watttime.endpoints import LOGIN_PATH, RETRYABLE_STATUSES, USER_AGENT, Call, request_id_of
from carbon_pipeline.watttime.errors import (
    WattTimeError,
    WattTimeResponseError,
    WattTimeTLSError,
    WattTimeUnavailableError,
)
from carbon_pipeline.watttime.limits import WattTimeLimits
from carbon_pipeline.watttime.replies import Reply

TRANSIENT_TRANSPORT_ERRORS = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    httpx.DecodingError,
)


class Abandoned(Exception):
    """Stands in for a request not sent because another chunk of the same call already failed."""


class TransientFailure(Exception):
    """One failed attempt worth repeating; only the last one surfaces, wrapped in a public error.

    `retry_after` is the server's Retry-After header as sent; the retry policy reads it.
    """

    def __init__(
        self, detail: str, *, request_id: str | None, retry_after: str | None = None, malformed_body: bool = False
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.request_id = request_id
        self.retry_after = retry_after
        self.malformed_body = malformed_body


class Transport:
    """Sends WattTime requests for one client; thread-safe, like the httpx pool and limiters it holds.

    A 200 reply whose body is not JSON is treated as transient (edges and proxies produce them) and retried
    within the policy before it becomes a `WattTimeResponseError`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        retry: RetryPolicy,
        timeout_seconds: float,
        limits: WattTimeLimits,
        max_concurrent_requests: int,
        logger: logging.Logger,
        verify: bool | ssl.SSLContext,
    ) -> None:
        self._retry = retry
        self._logger = logger
        self._http = httpx.Client(base_url=base_url, timeout=timeout_seconds, headers=USER_AGENT, verify=verify)
        self._limits = limits
        self._in_flight = threading.BoundedSemaphore(max_concurrent_requests)

    def close(self) -> None:
        """Release pooled connections and what the limits hold open."""
        self._http.close()
        self._limits.close()

    def send(self, call: Call, abort: threading.Event | None = None, **request: Any) -> Reply:
        """One GET, repeated on transient failures; `abort` stops it between attempts and before each send."""
        retrying = self._retry.retrying(
            lambda failure: isinstance(failure, TransientFailure),
            before_sleep=lambda state: self._log_retry(call, state),
            sleep=_backoff_sleep(abort),
            give_up=lambda state: self._give_up(call, state),
        )
        reply: Reply = retrying(self._attempt, call, request, abort)
        return reply

    def _attempt(self, call: Call, request: Mapping[str, Any], abort: threading.Event | None) -> Reply:
        response = self._exchange(call, request, abort)
        request_id = request_id_of(response)
        if response.status_code in RETRYABLE_STATUSES:
            raise TransientFailure(
                f"HTTP {response.status_code}", request_id=request_id, retry_after=response.headers.get("retry-after")
            )
        if response.status_code != 200:
            return Reply(response, None)
        try:
            return Reply(response, response.json())
        except ValueError as exc:  # the body is never quoted: a login reply carries the token
            raise TransientFailure(
                "HTTP 200 with a body that is not valid JSON", request_id=request_id, malformed_body=True
            ) from exc

    def _exchange(self, call: Call, request: Mapping[str, Any], abort: threading.Event | None) -> httpx.Response:
        """One request within the limits: an in-flight slot, then rate permits, then the request at once.

        The permits come last so that no request waits for a slot after its permit was counted: requests held
        back that way would later leave together, faster than the limit. The slot is free again before the body
        is decoded, so parsing one reply never holds back another request.
        """
        _check_abort(abort)
        with self._in_flight:
            if call.path == LOGIN_PATH:
                self._limits.wait_for_login()
            self._limits.wait_for_request()
            _check_abort(abort)  # the permits may have taken a while
            try:
                return self._http.get(call.path, **request)
            except TRANSIENT_TRANSPORT_ERRORS as exc:
                if _certificate_refused(exc):
                    raise WattTimeTLSError(f"{call.describe()}: TLS certificate not trusted ({exc})") from None
                raise TransientFailure(f"{type(exc).__name__}: {exc}", request_id=None) from exc

    def _log_retry(self, call: Call, state: RetryCallState) -> None:
        failure = failure_of(state)
        self._logger.warning(
            "%s: attempt %d of %d failed (%s, x-request-id: %s); retrying in %.2f s",
            call.describe(),
            state.attempt_number,
            self._retry.max_attempts,
            failure.detail,
            failure.request_id,
            state.upcoming_sleep,
        )

    def _give_up(self, call: Call, state: RetryCallState) -> NoReturn:
        failure = failure_of(state)
        summary = (
            f"{call.describe()}: gave up after {state.attempt_number} attempt(s) in {elapsed_seconds(state):.1f} s "
            f"(limits: {self._retry.describe()}); last error: {failure.detail}"
        )
        error: WattTimeError
        if failure.malformed_body:
            error = WattTimeResponseError(summary, request_id=failure.request_id, retryable=True)
        else:
            error = WattTimeUnavailableError(summary, request_id=failure.request_id)
        raise error from failure


def _check_abort(abort: threading.Event | None) -> None:
    """Send nothing more for a call another chunk of it already failed."""
    if abort is not None and abort.is_set():
        raise Abandoned


def _backoff_sleep(abort: threading.Event | None) -> Callable[[float], None]:
    """Sleep between attempts, cut short when a failure elsewhere abandons the call."""
    if abort is None:
        return time.sleep

    def sleep(seconds: float) -> None:
        abort.wait(seconds)

    return sleep


def _certificate_refused(error: BaseException) -> bool:
    """Retrying cannot fix an untrusted certificate, so it is told apart from other connection failures."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def failure_of(state: RetryCallState) -> TransientFailure:
    """The failed attempt a retry callback is about; Electricity Maps' transport reads it too."""
    assert state.outcome is not None
    failure = state.outcome.exception()
    assert isinstance(failure, TransientFailure)
    return failure
