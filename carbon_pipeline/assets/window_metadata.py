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

WINDOW_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("time", "timestamp", description="Start of the forecast's issue interval, UTC."),
        dg.TableColumn("region", "tag", description="WattTime region, e.g. CAISO_NORTH."),
        dg.TableColumn("grid_operator", "tag", description="Grid operator of the region."),
        dg.TableColumn("signal_type", "tag", description="WattTime signal, co2_moer."),
        dg.TableColumn("source", "tag", description="watttime, or simulator for the local deployment."),
        dg.TableColumn("window_hours", "tag", description="Length of the load's run, from CARBON_WINDOW_HOURS."),
        dg.TableColumn("window_start", "integer", description="Start of the cleanest window, Unix seconds."),
        dg.TableColumn("window_end", "integer", description="Its end, Unix seconds."),
        dg.TableColumn("window_start_iso", "string", description="Its start as ISO-8601 UTC, for templates."),
        dg.TableColumn("mean_gco2_kwh", "float", description="Mean forecast gCO2/kWh over the window."),
        dg.TableColumn("now_gco2_kwh", "float", description="The same for a window of that length starting now."),
        dg.TableColumn("cleaner_than_now_percent", "float", description="(now - window) / now x 100."),
        dg.TableColumn(
            "current_percentile", "float", description="Now within the next 24 h: 0 cleanest, 100 dirtiest."
        ),
        dg.TableColumn("generated_at", "integer", description="When WattTime issued the forecast, Unix seconds."),
    ]
)


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
