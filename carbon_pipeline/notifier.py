"""Where alerts go: always the Dagster log, and a chat webhook when one is configured.

The old service's failures went nowhere; here every alert lands in the sensor's log in the UI and,
with ``ALERT_WEBHOOK_URL`` set, in a Slack-compatible channel. Delivery problems are logged and
swallowed: a broken webhook must never stop the sensor from tracking failures. Webhook URLs carry
their own secret (Slack's do), so the URL never appears in logs or errors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import dagster as dg
import httpx
from pydantic import Field, field_validator

from carbon_pipeline.retry import RetryPolicy

DEFAULT_UI_URL = "http://127.0.0.1:3000"
# The first backoff window; later ones double up to ``backoff_max_seconds``.
BACKOFF_BASE_SECONDS = 0.2


def is_http_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


class AlertEvent(StrEnum):
    ALERT = "alert"
    RECOVERY = "recovery"


@dataclass(frozen=True)
class Alert:
    """One notification: a headline, detail lines and, where there is one, the run to open."""

    event: AlertEvent
    title: str
    details: tuple[str, ...] = ()
    run_id: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)


class AlertNotifier(dg.ConfigurableResource):
    """Sends alerts to the Dagster log and, optionally, a webhook (JSON POST with a ``text`` field).

    Webhook posts that fail with 429, 5xx or a network error are retried under the pipeline's retry policy
    (``carbon_pipeline.retry``). Subclass and extend ``deliver`` to add destinations (e-mail, PagerDuty)
    without touching sensors.
    """

    webhook_url: str | None = Field(
        default=None,
        repr=False,
        description="Slack-compatible incoming webhook; give it as EnvVar('ALERT_WEBHOOK_URL'). Unset: log only.",
    )
    ui_url: str = Field(default=DEFAULT_UI_URL, description="Base URL of the Dagster UI, for links to runs.")
    timeout_seconds: float = Field(default=5.0, gt=0, description="Timeout of each webhook request.")
    max_attempts: int = Field(default=3, ge=1, description="Webhook attempts on 429, 5xx and network errors.")
    backoff_max_seconds: float = Field(default=2.0, ge=0, description="Longest pause between webhook attempts.")
    max_retry_seconds: float = Field(
        default=15.0,
        ge=0,
        description="Time budget for delivering one alert, waits included; bounds a webhook's Retry-After so a "
        "sensor tick never stalls on it.",
    )

    @field_validator("ui_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not is_http_url(value):
            raise ValueError("expected an http:// or https:// URL")
        return value

    def run_url(self, run_id: str) -> str:
        return f"{self.ui_url.rstrip('/')}/runs/{run_id}"

    def text(self, alert: Alert) -> str:
        lines = [alert.title, *alert.details]
        if alert.run_id:
            lines.append(f"Run: {self.run_url(alert.run_id)}")
        return "\n".join(lines)

    def send(self, alert: Alert, log: logging.Logger) -> bool:
        """Deliver ``alert`` everywhere configured; False when a destination failed (already logged)."""
        log.log(logging.ERROR if alert.event == AlertEvent.ALERT else logging.INFO, self.text(alert))
        return self.deliver(alert, log)

    def deliver(self, alert: Alert, log: logging.Logger) -> bool:
        if self.webhook_url is None:
            return True
        try:
            self._post_with_retries(self.payload(alert))
        except WebhookFailed as failure:
            log.warning("Alert webhook delivery failed after %d attempt(s): %s", self.max_attempts, failure)
            return False
        return True

    def payload(self, alert: Alert) -> dict[str, Any]:
        body: dict[str, Any] = {"text": self.text(alert), "event": alert.event.value, **alert.fields}
        if alert.run_id:
            body["run_url"] = self.run_url(alert.run_id)
        return body

    def _post_with_retries(self, payload: dict[str, Any]) -> None:
        policy = RetryPolicy(self.max_attempts, self.max_retry_seconds, BACKOFF_BASE_SECONDS, self.backoff_max_seconds)
        retrying = policy.retrying(lambda error: isinstance(error, WebhookFailed) and error.retryable)
        retrying(self._post, payload)

    def _post(self, payload: dict[str, Any]) -> None:
        assert self.webhook_url is not None
        try:
            response = httpx.post(self.webhook_url, json=payload, timeout=self.timeout_seconds)
        except httpx.TimeoutException:
            raise WebhookFailed("timed out", retryable=True) from None
        except httpx.TransportError as error:
            raise WebhookFailed(f"network error ({type(error).__name__})", retryable=True) from None
        if response.status_code >= 300:
            retryable = response.status_code == 429 or response.status_code >= 500
            raise WebhookFailed(
                f"HTTP {response.status_code}", retryable=retryable, retry_after=response.headers.get("retry-after")
            )


class WebhookFailed(Exception):
    """A webhook delivery failure described without the URL, which may embed a secret.

    ``retry_after`` is the webhook's Retry-After header as sent (Slack sends one with its 429s); the retry
    policy reads it.
    """

    def __init__(self, reason: str, *, retryable: bool, retry_after: str | None = None) -> None:
        super().__init__(reason)
        self.retryable = retryable
        self.retry_after = retry_after
