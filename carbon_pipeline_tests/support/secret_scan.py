"""Looking for secrets where they must never be: files, process command lines, captured output, UI answers
(``process_sampler`` gathers the command lines, ``ui_answers`` what the UI shows).

A secret counts as seen when any 8 of its characters are, in a row, as they are or base64-encoded: a
log that prints a token's first characters leaks them as surely as the whole token. A scan that finds
nothing proves nothing unless it could have found something, so the tests also run every kind of
search here on planted copies. Findings name the secret, never its value, and every text
shown in a finding is redacted first, so a failing assertion cannot print the secret it caught.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from secrets import token_urlsafe


@dataclass(frozen=True)
class Finding:
    """A secret seen somewhere: ``where`` says which file, process or answer; ``secret`` is its name."""

    where: str
    secret: str


# The shortest piece of a secret the scan finds: any 8 characters of it, wherever they sit. Shorter
# pieces of random text turn up by chance (hex run ids, base64 blobs), longer ones would let a log that
# cuts a token to its first few characters pass.
WINDOW = 8
# Every 8-byte stretch of a text holds a 4-byte stretch that starts at a multiple of 5, so the scan
# looks up one 4-byte anchor in 5 positions and compares whole windows only around the anchors found.
_ANCHOR = 4
_STRIDE = WINDOW - _ANCHOR + 1
# base64 turns 3 bytes into 4 characters: 6 bytes of a secret in whole groups become 8 characters that
# do not depend on what surrounds them, and 8 bytes hold 6 in whole groups at any alignment.
_BASE64_PIECE = 6
SENTINEL_PREFIX = "SENTINEL-"


def pieces(value: str) -> frozenset[bytes]:
    """The 8-byte strings that betray any 8 or more characters of ``value`` in a larger text.

    Every 8-byte window of its UTF-8 bytes, and the base64 of every 6-byte window: HTTP Basic auth sends
    ``base64(user:password)``, and any 8 bytes of the password fill two whole base64 groups there.
    """
    raw = value.encode()
    if len(raw) < WINDOW:
        raise ValueError(f"a secret of {len(raw)} bytes is shorter than the {WINDOW} bytes the scan looks for")
    windows = {raw[start : start + WINDOW] for start in range(len(raw) - WINDOW + 1)}
    encoded = {base64.b64encode(raw[start : start + _BASE64_PIECE]) for start in range(len(raw) - _BASE64_PIECE + 1)}
    return frozenset(windows | encoded)


def new_sentinel() -> str:
    """A credential only this test can have produced: a readable label and 32 random base64url characters.

    Random base64url rather than a UUID: 8 characters of a UUID straddling its dashes leave about
    18 random bits, which the run ids and event ids in Dagster's storage would match by chance.
    """
    return f"{SENTINEL_PREFIX}{token_urlsafe(24)}"


def sentinel_secrets(sentinels: Mapping[str, str]) -> dict[str, str]:
    """What is secret in each sentinel: its random part. The label and, for the webhook URL, its scheme, host,
    port and path before the label are shared by every sentinel or said in the open, and their 8-character
    pieces ("SENTINEL", "http://1") would be found everywhere."""
    return {name: value.rsplit(SENTINEL_PREFIX, 1)[1] for name, value in sentinels.items()}


class SecretScanner:
    """Searches bytes, texts, folders and processes for any 8 or more characters of any of ``secrets``
    (name -> value), raw or in base64; every value must be at least ``WINDOW`` bytes long.

    Give it what is secret only: a constant from the source tree, such as the simulator's own account
    (``simulator`` / ``simulator-password``), is public, and its pieces are in every log that names the account.
    """

    def __init__(self, secrets: Mapping[str, str]) -> None:
        self._names = list(secrets)
        self._owners: dict[bytes, set[str]] = {}
        for name, value in secrets.items():
            for piece in pieces(value):
                self._owners.setdefault(piece, set()).add(name)
        self._anchors = {piece[start : start + _ANCHOR] for piece in self._owners for start in range(_STRIDE)}

    def _matches(self, data: bytes) -> list[tuple[int, set[str]]]:
        """Where a piece of a secret starts in ``data``, and whose it is, in order."""
        found: dict[int, set[str]] = {}
        anchors, owners = self._anchors, self._owners
        for anchor in range(0, len(data) - _ANCHOR + 1, _STRIDE):
            if data[anchor : anchor + _ANCHOR] in anchors:
                for start in range(max(0, anchor - (WINDOW - _ANCHOR)), anchor + 1):
                    names = owners.get(data[start : start + WINDOW])
                    if names:
                        found.setdefault(start, set()).update(names)
        return sorted(found.items())

    def scan_bytes(self, where: str, data: bytes) -> list[Finding]:
        seen = {name for _, names in self._matches(data) for name in names}
        return [Finding(where, name) for name in self._names if name in seen]

    def scan_text(self, where: str, text: str) -> list[Finding]:
        return self.scan_bytes(where, text.encode())

    def redacted(self, data: bytes) -> str:
        """``data`` as text with every stretch holding a piece of a secret replaced by the secrets' names."""
        shown, end, spans = bytearray(), 0, self._spans(data)
        for start, stop, names in spans:
            shown += data[end:start] + f"<{'|'.join(sorted(names))}>".encode()
            end = stop
        return (bytes(shown) + data[end:]).decode(errors="replace")

    def _spans(self, data: bytes) -> list[tuple[int, int, set[str]]]:
        """The matched windows, overlapping ones merged into one stretch."""
        spans: list[tuple[int, int, set[str]]] = []
        for start, names in self._matches(data):
            if spans and start <= spans[-1][1]:
                spans[-1] = (spans[-1][0], start + WINDOW, spans[-1][2] | names)
            else:
                spans.append((start, start + WINDOW, set(names)))
        return spans

    def scan_tree(self, root: Path) -> list[Finding]:
        """Every file under ``root``, hidden ones and SQLite databases included, by content and by name."""
        findings: list[Finding] = []
        for path in sorted(root.rglob("*")):
            shown = self.redacted(str(path).encode())
            findings += self.scan_text(f"file name {shown}", str(path.relative_to(root)))
            if path.is_file() and not path.is_symlink():
                findings += self.scan_bytes(f"file {shown}", path.read_bytes())
        return findings
