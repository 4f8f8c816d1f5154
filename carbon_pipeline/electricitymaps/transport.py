"""HTTP to Electricity Maps within its limits: spaced requests, bounded retries that honour 429 Retry-After.

Transient failures (429, 5xx, timeouts, resets, a 200 whose body is not JSON) are repeated under the
pipeline's one retry policy (`carbon_pipeline.retry`), which waits as long as a 429's Retry-After asks within
the budget. The token travels in the `auth-token` header only: never in a URL, a log line or an error.
"""

import logging
import ssl
from typing import Any, NoReturn

import httpx
from tenacity import RetryCallState

from carbon_pipeline.electricitymaps.endpoints import RETRYABLE_STATUSES, TOKEN_HEADER, Query
from carbon_pipeline.electricitymaps.errors import (
    ElectricityMapsError,
    ElectricityMapsRateLimitedError,
    ElectricityMapsResponseError,
    ElectricityMapsUnavailableError,
)
from carbon_pipeline.rate_limits import Budgets
from carbon_pipeline.retry import RetryPolicy, elapsed_seconds
from carbon_pipeline.watttime.endpoints import USER_AGENT
from carbon_pipeline.watttime.transport import TRANSIENT_TRANSPORT_ERRORS, TransientFailure, failure_of

REQUEST = "request"


class Transport:
    """Sends one client's requests; thread-safe, like the httpx pool and the budgets it holds."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        retry: RetryPolicy,
        timeout_seconds: float,
        budgets: Budgets,
        logger: logging.Logger,
        verify: bool | ssl.SSLContext,
    ) -> None:
        self._retry = retry
        self._budgets = budgets
        self._logger = logger
        headers = {**USER_AGENT, TOKEN_HEADER: token}
        self._http = httpx.Client(base_url=base_url, timeout=timeout_seconds, headers=headers, verify=verify)

    def close(self) -> None:
        self._http.close()
        self._budgets.close()

    def get_json(self, query: Query, params: dict[str, str]) -> tuple[httpx.Response, Any]:
        """One GET, repeated on transient failures; a 200's decoded body, or the final non-200 reply (body None)."""
        retrying = self._retry.retrying(
            lambda failure: isinstance(failure, TransientFailure),
            before_sleep=lambda state: self._log_retry(query, state),
            give_up=lambda state: self._give_up(query, state),
        )
        reply: tuple[httpx.Response, Any] = retrying(self._attempt, query, params)
        return reply

    def _attempt(self, query: Query, params: dict[str, str]) -> tuple[httpx.Response, Any]:
        self._budgets.take(REQUEST)
        try:
            response = self._http.get(query.path, params=params)
        except TRANSIENT_TRANSPORT_ERRORS as exc:
            raise TransientFailure(f"{type(exc).__name__}: {exc}", request_id=None) from exc
        request_id = response.headers.get("x-request-id")
        if response.status_code in RETRYABLE_STATUSES:
            raise TransientFailure(
                f"HTTP {response.status_code}", request_id=request_id, retry_after=response.headers.get("retry-after")
            )
        if response.status_code != 200:
            return response, None
        try:
            return response, response.json()
        except ValueError as exc:
            raise TransientFailure(
                "HTTP 200 with a body that is not valid JSON", request_id=request_id, malformed_body=True
            ) from exc

    def _log_retry(self, query: Query, state: RetryCallState) -> None:
        failure = failure_of(state)
        self._logger.warning(
            "Electricity Maps %s: attempt %d of %d failed (%s); retrying in %.2f s",
            query.describe(),
            state.attempt_number,
            self._retry.max_attempts,
            failure.detail,
            state.upcoming_sleep,
        )

    def _give_up(self, query: Query, state: RetryCallState) -> NoReturn:
        failure = failure_of(state)
        summary = (
            f"gave up after {state.attempt_number} attempt(s) in {elapsed_seconds(state):.1f} s "
            f"(limits: {self._retry.describe()}); last error: {failure.detail}"
        )
        error: ElectricityMapsError
        if failure.malformed_body:
            error = ElectricityMapsResponseError(summary, query=query, retryable=True)
        elif failure.detail == "HTTP 429":
            error = ElectricityMapsRateLimitedError(summary, query=query)
        else:
            error = ElectricityMapsUnavailableError(summary, query=query)
        raise error from failure
