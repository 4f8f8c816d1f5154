"""The InfluxDB schema of WattTime forecasts and its line-protocol serializer.

Every point of every forecast is kept: measurement ``carbon_forecast``, the tags of
``series_prefix`` and then ``horizon_minutes``, timestamp the forecast point's time. One forecast is
stored per 15-minute interval, for up to 72 hours, so up to 288 forecasts predict the same point
time; the horizon tag keeps them apart as distinct points. Two forecasts of a region start at
different 5-minute periods (their issue intervals do not overlap), so they give the same point time
different horizons; and a horizon is bounded (865 values, 0 to 72 h in 5-minute steps), where
``generated_at`` as a tag would add a series per forecast forever. ``generated_at`` is an integer
field instead: queries pick the newest forecast, or one forecast, by it. Re-writing a forecast
writes the same lines, so its points are overwritten with identical values, which is harmless even
on InfluxDB 3 Core, whose overwrites with changed values are not deterministic.

The headline values (``carbon_forecast_headline``) are what the old service's consumers read: the
forecast 1 h and 24 h after each issue, timestamped at the issue interval's start. They have a
measurement of their own because, as fields of ``carbon_intensity`` at that timestamp, they would
make a second write of the MOER point by another asset at another time, and InfluxDB 3 Core does not
say which version of a point written twice it keeps.
"""

from __future__ import annotations

import pandas as pd

from carbon_pipeline.sinks.line_protocol import LineProtocolError, model_date_field, series_prefix

FORECAST_MEASUREMENT = "carbon_forecast"
HEADLINE_MEASUREMENT = "carbon_forecast_headline"
HORIZON_STEP_MINUTES = 5
MAX_HORIZON_MINUTES = 72 * 60
# Field -> the horizon it reads: "1 h after the issue" is 60 minutes after the forecast's first point
# (generated_at floored to its 5-minute period), whatever minute of the interval it was issued in. "24 h" is
# the last 5-minute period of the day ahead, which ends 24 h after the first point: the last point of the
# default 24 h forecast, so the old service's consumers get it without a longer horizon.
HEADLINE_HORIZONS = {"forecast_1h": 60, "forecast_24h": 24 * 60 - HORIZON_STEP_MINUTES}

_HORIZON_TAGS = [f",horizon_minutes={minutes}" for minutes in range(0, MAX_HORIZON_MINUTES + 1, HORIZON_STEP_MINUTES)]
_NANOSECONDS_PER_SECOND = 1_000_000_000


def forecast_lines(frame: pd.DataFrame, *, signal_type: str, source: str) -> list[str]:
    """Serialize a validated forecast frame (``carbon_pipeline.forecast_validation``), one line per point.

    Built from plain lists like ``carbon_intensity_lines``: a month of 15-minute issues of 24 h
    forecasts is 829,440 points.
    """
    _require_bounded_horizons(frame)
    prefixes = {
        region: series_prefix(region, signal_type, source, FORECAST_MEASUREMENT) for region in frame["region"].unique()
    }
    models = frame["model_date"].astype(object).where(frame["model_date"].notna(), None).tolist()
    model_fields = {model: model_date_field(model) for model in set(models)}
    return [
        f"{prefixes[region]}{_HORIZON_TAGS[step]} moer_lbs_per_mwh={moer!r},carbon_intensity_gco2_kwh={grams!r},"
        f"generated_at={generated}i{model_fields[model]} {second}"
        for region, step, moer, grams, generated, model, second in zip(
            frame["region"].tolist(),
            (frame["horizon_minutes"] // HORIZON_STEP_MINUTES).tolist(),
            frame["moer_lbs_per_mwh"].tolist(),
            frame["carbon_intensity_gco2_kwh"].tolist(),
            _seconds(frame["generated_at"]),
            models,
            _seconds(frame["point_time"]),
            strict=True,
        )
    ]


def forecast_headline_lines(frame: pd.DataFrame, *, signal_type: str, source: str) -> list[str]:
    """One line per forecast with the gCO2/kWh predicted at each headline horizon it reaches.

    A forecast shorter than 24 h has no ``forecast_24h``; one shorter than 65 minutes has neither
    field and no line (a line needs a field).
    """
    _require_bounded_horizons(frame)
    wanted = list(HEADLINE_HORIZONS.values())
    picked = frame[frame["horizon_minutes"].isin(wanted)]
    table = picked.pivot(
        index=["region", "issue_time"], columns="horizon_minutes", values="carbon_intensity_gco2_kwh"
    ).reindex(columns=wanted)
    prefixes = {
        region: series_prefix(region, signal_type, source, HEADLINE_MEASUREMENT)
        for region in table.index.get_level_values("region").unique()
    }
    seconds = _seconds(pd.Series(table.index.get_level_values("issue_time")))
    return [
        f"{prefixes[region]} {_headline_fields(values)} {second}"
        for (region, _), values, second in zip(table.index, table.to_numpy().tolist(), seconds, strict=True)
    ]


def _headline_fields(values: list[float]) -> str:
    return ",".join(
        f"{name}={value!r}" for name, value in zip(HEADLINE_HORIZONS, values, strict=True) if not pd.isna(value)
    )


def _require_bounded_horizons(frame: pd.DataFrame) -> None:
    """Refuse a horizon off the 5-minute grid or beyond 72 h: each new value would be a new series."""
    horizons = frame["horizon_minutes"]
    off = (horizons < 0) | (horizons > MAX_HORIZON_MINUTES) | (horizons % HORIZON_STEP_MINUTES != 0)
    if off.any():
        row = frame[off].iloc[0]
        raise LineProtocolError(
            f"region {row['region']}, forecast issue time {row['issue_time'].isoformat()}: horizon_minutes "
            f"{row['horizon_minutes']} is not a multiple of {HORIZON_STEP_MINUTES} in 0..{MAX_HORIZON_MINUTES}"
        )


def _seconds(times: pd.Series) -> list[int]:
    return (times.astype("int64") // _NANOSECONDS_PER_SECOND).tolist()
