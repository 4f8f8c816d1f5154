"""Summary table of the fault matrix, printed at the end of the pytest session.

Each matrix case records what it observed (outcome and message) before asserting anything, so the
table also shows the cases that failed. Read side by side, the rows show which faults the pipeline
absorbs, which fail a run, and whether each failure message says what went wrong, where and when.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import pytest

EXCERPT_CHARS = 110
HEADERS = ("fault", "layer", "outcome", "message excerpt")
# Parts of a failure message the table leaves out, as every row would repeat them.
CALL_PREFIX = re.compile(r"GET /\S+, region \S+, window \[[^)]*\): ")
DESTINATION = re.compile(r"InfluxDB write to .*? \((?:v2|v3) write API\) ")


@dataclass(frozen=True)
class FaultRow:
    """One line of the table: a fault, where it was injected, what the run did and what it said."""

    fault: str
    layer: str
    outcome: str
    message: str


ROWS: list[FaultRow] = []


def record_fault(row: FaultRow) -> None:
    ROWS.append(row)


def without_boilerplate(cause: str) -> str:
    """A failure's cause without the WattTime request or the InfluxDB destination it names."""
    return DESTINATION.sub("", CALL_PREFIX.sub("", cause, count=1), count=1)


def excerpt(message: str, limit: int = EXCERPT_CHARS) -> str:
    """One line, cut to ``limit`` characters: run messages may span lines and quote whole line-protocol lines."""
    text = " ".join(message.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_table(rows: Sequence[FaultRow]) -> list[str]:
    cells = [(row.fault, row.layer, row.outcome, excerpt(row.message)) for row in rows]
    widths = [max(len(HEADERS[column]), *(len(cell[column]) for cell in cells)) for column in range(len(HEADERS))]

    def line(values: Sequence[str]) -> str:
        return " | ".join(value.ljust(width) for value, width in zip(values, widths, strict=True)).rstrip()

    return [line(HEADERS), "-+-".join("-" * width for width in widths), *(line(cell) for cell in cells)]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the table once, after the run; nothing when no matrix case ran (e.g. other files selected)."""
    if not ROWS:
        return
    terminalreporter.section(f"fault matrix: {len(ROWS)} faults")
    for text in format_table(ROWS):
        terminalreporter.write_line(text)
