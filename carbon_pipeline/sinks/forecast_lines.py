"""Interim forecast serializer (replaced by the full one)."""

from __future__ import annotations

import pandas as pd

from carbon_pipeline.sinks.line_protocol import escape_string_field, series_prefix

FORECAST_MEASUREMENT = "carbon_forecast"
HEADLINE_MEASUREMENT = "carbon_forecast_headline"


def forecast_lines(frame: pd.DataFrame, *, signal_type: str, source: str) -> list[str]:
    prefixes = {
        region: series_prefix(region, signal_type, source, FORECAST_MEASUREMENT) for region in frame["region"].unique()
    }
    seconds = (frame["point_time"].astype("int64") // 1_000_000_000).tolist()
    generated = (frame["generated_at"].astype("int64") // 1_000_000_000).tolist()
    return [
        f"{prefixes[r]},horizon_minutes={h} moer_lbs_per_mwh={m!r},carbon_intensity_gco2_kwh={g!r},generated_at={ga}i"
        f"{'' if md is None else ',model_date=' + escape_string_field(md)} {s}"
        for r, h, m, g, ga, md, s in zip(
            frame["region"],
            frame["horizon_minutes"],
            frame["moer_lbs_per_mwh"],
            frame["carbon_intensity_gco2_kwh"],
            generated,
            frame["model_date"],
            seconds,
            strict=True,
        )
    ]


def forecast_headline_lines(frame: pd.DataFrame, *, signal_type: str, source: str) -> list[str]:
    return []
