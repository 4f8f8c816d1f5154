"""The alert notifier: the log always, the webhook when configured, retries, and no secret in what it says."""

from __future__ import annotations

import logging
import socket

import pytest

from carbon_pipeline.deployments import alert_notifier
from carbon_pipeline.notifier import Alert, AlertEvent, AlertNotifier
from carbon_pipeline.settings import ConfigurationError, PipelineSettings
from carbon_pipeline_tests.support.webhook_receiver import WebhookReceiver

ALERT = Alert(AlertEvent.ALERT, "InfluxDB writes failing for region IE", ("Last error: HTTP 503",), run_id="abc123")


@pytest.fixture
def receiver() -> WebhookReceiver:
    with WebhookReceiver() as receiver:
        yield receiver


def test_the_webhook_gets_a_slack_compatible_text_with_the_run_link(receiver: WebhookReceiver) -> None:
    notifier = AlertNotifier(webhook_url=receiver.url, ui_url="https://dagster.example.org/")
    assert notifier.send(ALERT, logging.getLogger("test"))
    (payload,) = receiver.payloads
    assert payload["text"].splitlines() == [
        "InfluxDB writes failing for region IE",
        "Last error: HTTP 503",
        "Run: https://dagster.example.org/runs/abc123",
    ]
    assert payload["event"] == "alert" and payload["run_url"] == "https://dagster.example.org/runs/abc123"


def test_the_log_always_gets_the_alert(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        assert AlertNotifier().send(ALERT, logging.getLogger("alerts"))
    assert [record.levelno for record in caplog.records] == [logging.ERROR]
    assert "InfluxDB writes failing for region IE" in caplog.text


def test_server_errors_are_retried_until_delivered(receiver: WebhookReceiver) -> None:
    receiver.refuse(503, count=2)
    notifier = AlertNotifier(webhook_url=receiver.url, max_attempts=3, backoff_max_seconds=0.01)
    assert notifier.send(ALERT, logging.getLogger("test"))
    assert receiver.attempts == 3 and len(receiver.payloads) == 1


def test_a_client_error_is_not_retried_and_never_raises(
    receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.refuse(404, count=1)
    notifier = AlertNotifier(webhook_url=receiver.url, max_attempts=3, backoff_max_seconds=0.01)
    assert not notifier.send(ALERT, logging.getLogger("test"))
    assert receiver.attempts == 1
    assert "HTTP 404" in caplog.text and receiver.url not in caplog.text


def test_an_unreachable_webhook_is_logged_without_its_url(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    secret_url = f"http://127.0.0.1:{port}/services/T000/B000/SECRETTOKEN"
    notifier = AlertNotifier(webhook_url=secret_url, max_attempts=2, backoff_max_seconds=0.01, timeout_seconds=1)
    assert not notifier.send(ALERT, logging.getLogger("test"))
    assert "network error" in caplog.text and "SECRETTOKEN" not in caplog.text
    assert "SECRETTOKEN" not in repr(notifier)


def _notifier(env: dict[str, str]) -> AlertNotifier:
    return alert_notifier(PipelineSettings.from_env(env))


def test_the_webhook_is_taken_from_the_environment_by_name_only() -> None:
    configured = _notifier({"ALERT_WEBHOOK_URL": "https://hooks.example.org/T/B/SECRET"})
    assert "SECRET" not in repr(configured)
    assert _notifier({}).webhook_url is None
    with pytest.raises(ConfigurationError, match="CARBON_UI_URL"):
        _notifier({"CARBON_UI_URL": "dagster.local:3000"})
    with pytest.raises(ConfigurationError, match="ALERT_WEBHOOK_URL") as refused:
        _notifier({"ALERT_WEBHOOK_URL": "hooks.example.org/T/B/SECRET"})
    assert "SECRET" not in str(refused.value)
