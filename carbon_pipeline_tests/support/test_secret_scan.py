"""The secret scanner on planted copies: any 8 characters of a secret are found, raw or base64, 7 are not."""

from __future__ import annotations

import base64
import secrets

import pytest

from carbon_pipeline_tests.support.secret_scan import (
    SENTINEL_PREFIX,
    WINDOW,
    Finding,
    SecretScanner,
    new_sentinel,
    sentinel_secrets,
)

TOKEN = secrets.token_urlsafe(32)
SCANNER = SecretScanner({"TOKEN": TOKEN})
# Where a piece sits in the secret: its start, an inside offset, its end.
OFFSETS = {"prefix": 0, "infix": 13, "suffix": len(TOKEN) - WINDOW}


def _found(text: str) -> set[str]:
    return {finding.secret for finding in SCANNER.scan_text("planted", text)}


@pytest.mark.parametrize("offset", OFFSETS.values(), ids=OFFSETS.keys())
def test_eight_characters_of_a_secret_are_found_wherever_they_come_from(offset: int) -> None:
    piece = TOKEN[offset : offset + WINDOW]
    assert _found(f"GET /v3/historical Authorization: Bearer {piece}... (cut)") == {"TOKEN"}


@pytest.mark.parametrize("offset", OFFSETS.values(), ids=OFFSETS.keys())
def test_seven_characters_are_not_enough(offset: int) -> None:
    piece = TOKEN[offset : offset + WINDOW - 1]
    assert _found(f"Bearer {piece}... (cut)") == set()


@pytest.mark.parametrize("lead", ["", "u", "us", "use"])
def test_eight_characters_are_found_base64_encoded_at_every_alignment(lead: str) -> None:
    """As in HTTP Basic auth: what precedes the piece shifts it within base64's 3-byte groups."""
    encoded = base64.b64encode(f"{lead}:{TOKEN[13 : 13 + WINDOW]}".encode()).decode()
    assert _found(f"Authorization: Basic {encoded}") == {"TOKEN"}


def test_findings_name_each_secret_seen_and_only_those() -> None:
    other = secrets.token_urlsafe(32)
    scanner = SecretScanner({"TOKEN": TOKEN, "OTHER": other, "UNSEEN": secrets.token_urlsafe(32)})
    text = f"{other[20:29]} and {TOKEN}"
    assert scanner.scan_text("log", text) == [Finding("log", "TOKEN"), Finding("log", "OTHER")]


def test_redaction_leaves_no_piece_of_a_secret() -> None:
    text = f"a={TOKEN[:10]} b={TOKEN[4:30]}{TOKEN[2:12]} c=plain"
    shown = SCANNER.redacted(text.encode())
    assert shown == "a=<TOKEN> b=<TOKEN> c=plain"
    assert _found(shown) == set()


def test_a_secret_shorter_than_the_window_is_refused() -> None:
    with pytest.raises(ValueError, match="shorter than the 8 bytes"):
        SecretScanner({"PIN": "1234567"})


def test_what_every_sentinel_shares_is_not_a_secret() -> None:
    """The label and the webhook URL's origin are in plain sight; only the random parts are looked for."""
    sentinels = {"PASSWORD": new_sentinel(), "WEBHOOK": f"http://127.0.0.1:8123/hooks/{new_sentinel()}"}
    scanner = SecretScanner(sentinel_secrets(sentinels))
    public = f"posting to http://127.0.0.1:8123/hooks/{SENTINEL_PREFIX}... with {SENTINEL_PREFIX}"
    assert scanner.scan_text("log", public) == []
    assert [finding.secret for finding in scanner.scan_text("log", str(sentinels))] == ["PASSWORD", "WEBHOOK"]
