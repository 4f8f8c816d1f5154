"""The Electricity Maps token never shows: not in any log line (httpx and httpcore at DEBUG included), not in
any error or traceback, not in reprs, not in the shared limits folder, whatever the calls went through."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from carbon_pipeline.electricitymaps.errors import ElectricityMapsError
from carbon_pipeline.electricitymaps.resource import ElectricityMapsResource
from carbon_pipeline.electricitymaps.simulator import ElectricityMapsSimulator
from carbon_pipeline.electricitymaps.simulator.state import FREE, PAID
from carbon_pipeline_tests.electricitymaps.conftest import ClientFactory
from carbon_pipeline_tests.support.secret_scan import SecretScanner, new_sentinel, sentinel_secrets

DAY = datetime(2025, 1, 1, tzinfo=UTC)


def test_tokens_appear_in_no_log_error_repr_or_file(
    start_simulator: Callable[..., ElectricityMapsSimulator],
    make_client: ClientFactory,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    sentinels = {"paid": new_sentinel(), "free": new_sentinel(), "refused": new_sentinel()}
    sim = start_simulator(tokens={sentinels["paid"]: PAID, sentinels["free"]: FREE}, rate_limit=2)
    httpx.post(f"{sim.base_url}/_simulator/faults", json={"kind": "status", "status": 503}).raise_for_status()
    texts: list[str] = []
    caplog.set_level(logging.DEBUG)
    paid = make_client(sentinels["paid"], sim, limits_folder=tmp_path)
    texts.append(repr(paid))
    paid.history("FR")  # a retried 503, then a 429 from the two-a-second limit below
    for _ in range(3):
        paid.latest("FR")
    failures: list[ElectricityMapsError] = []
    for token, call in (
        (sentinels["free"], lambda client: client.past_range("DE", DAY, DAY + timedelta(hours=1))),
        (sentinels["refused"], lambda client: client.history("DE")),
        (sentinels["paid"], lambda client: client.history("XX-NOWHERE")),
    ):
        with pytest.raises(ElectricityMapsError) as caught:
            call(make_client(token, sim))
        failures.append(caught.value)
    texts += [repr(error) for error in failures] + ["".join(traceback.format_exception(error)) for error in failures]
    texts.append(repr(ElectricityMapsResource(api_token=sentinels["paid"])))
    texts += [record.getMessage() for record in caplog.records]
    assert any("retrying" in text for text in texts) and sim.state.stats()["statuses"].get(429)

    scanner = SecretScanner(sentinel_secrets(sentinels))
    findings = [finding for index, text in enumerate(texts) for finding in scanner.scan_text(f"text {index}", text)]
    findings += scanner.scan_tree(tmp_path)
    assert list(tmp_path.iterdir()), "the shared limits folder was used"
    assert findings == []
