"""What a sensor tick decided, written to the tick's own log ("View logs" on a tick in the UI).

Dagster's tick list says only how many runs a tick requested, or "Skipped" with the reason in a
hover; a tick's log is where the sensors say what they found missing, what they requested or sent,
and why they did nothing. Dagster lists every tick that requests no run as skipped, even one that
recorded a check result or sent an alert ("Sensor function returned an empty result" when it is
given no reason), so such ticks get a skip reason saying what they did, logged word for word too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import dagster as dg

# Beyond this many, a list in a log line is cut: "A, B, ... and 12 more".
MAX_LISTED = 10


def listed(items: Sequence[str], limit: int = MAX_LISTED) -> str:
    """``items`` comma-separated, the first ``limit`` of them when there are more."""
    shown = ", ".join(items[:limit])
    hidden = len(items) - limit
    return f"{shown} and {hidden} more" if hidden > 0 else shown


def skipped(
    log: logging.Logger,
    reason: str,
    cursor: str | None = None,
    asset_events: Sequence[dg.AssetCheckEvaluation] = (),
) -> dg.SensorResult:
    """A tick that requests no run: ``reason`` both in its log and as its skip reason."""
    log.info("Skipped: %s", reason)
    return dg.SensorResult(cursor=cursor, skip_reason=reason, asset_events=list(asset_events))
