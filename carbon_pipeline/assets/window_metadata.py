"""What each cleanest-window partition shows in the UI: per window length, when it starts and how clean it is.

Numbers, not text, so the asset's Plots draw them over issue time: the percent saved by waiting, and where
the grid ranked when each forecast was issued.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dagster as dg

from carbon_pipeline.cleanest_windows import CleanestWindow
from carbon_pipeline.partitions import interval_key, partition_key_text
from carbon_pipeline.sinks.derived_lines import window_hours_tag


def window_metadata(windows: Sequence[CleanestWindow]) -> dict[str, dict[str, Any]]:
    """Each issue's windows as metadata, keyed like the issue's partition."""
    metadata: dict[str, dict[str, Any]] = {}
    for window in windows:
        key = partition_key_text(window.region, interval_key(window.issue_time))
        hours = window_hours_tag(window.window_hours)
        own = metadata.setdefault(key, {"current_percentile": window.current_percentile})
        own[f"cleanest_{hours}h_start"] = dg.MetadataValue.timestamp(window.start)
        own[f"cleanest_{hours}h_gco2_kwh"] = window.mean_gco2_kwh
        own[f"cleanest_{hours}h_cleaner_than_now_percent"] = window.cleaner_than_now_percent
    return metadata
