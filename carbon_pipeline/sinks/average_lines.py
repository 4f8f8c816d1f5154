"""Line protocol of average carbon intensity: measurement ``average_carbon_intensity``, field ``gco2eq_per_kwh``.

A measurement of its own, never ``carbon_intensity``: an average (what each kWh consumed in a zone emitted)
is a different quantity from WattTime's marginal MOER (what one more kWh would emit now), and a query
mixing them would mean nothing. Tags ``zone``, ``signal_type`` (``average_lifecycle`` or ``average_direct``)
and ``source`` in that order; fields ``gco2eq_per_kwh``, ``is_estimated`` and, when Electricity Maps names
it, ``estimation_method``; one point per zone and interval at the interval's start, in whole seconds.

Electricity Maps' forecasts have a measurement of their own too, ``average_carbon_forecast``, never WattTime's
``carbon_forecast``: the same tags then ``horizon_hours`` (hours from the issue's hour to the point), fields
``gco2eq_per_kwh`` and ``generated_at`` (integer Unix seconds: the reply's ``updatedAt``), at the point's
time. Issues are an hour apart, so two of them give one point time different horizons, and re-storing an
issue rewrites identical points.
"""

from __future__ import annotations

import pandas as pd

from carbon_pipeline.sinks.line_protocol import escape_string_field, tagged_prefix

AVERAGE_MEASUREMENT = "average_carbon_intensity"
AVERAGE_FIELD = "gco2eq_per_kwh"
AVERAGE_FORECAST_MEASUREMENT = "average_carbon_forecast"


def average_signal_type(emission_factor_type: str) -> str:
    """The ``signal_type`` tag: ``average_lifecycle`` or ``average_direct``, never a WattTime signal's name."""
    return f"average_{emission_factor_type}"


def zone_prefix(measurement: str, zone: str, emission_factor_type: str, source: str) -> str:
    """The measurement and tags of one zone's series, in the order every line lists them."""
    tags = (("zone", zone), ("signal_type", average_signal_type(emission_factor_type)), ("source", source))
    return tagged_prefix(measurement, tags)


def average_forecast_lines(frame: pd.DataFrame, *, emission_factor_type: str, source: str) -> list[str]:
    """One line per point of validated forecast frames (``average_validation.validate_average_forecast``)."""
    prefixes = {
        zone: zone_prefix(AVERAGE_FORECAST_MEASUREMENT, zone, emission_factor_type, source)
        for zone in frame["region"].unique()
    }
    return [
        f"{prefixes[zone]},horizon_hours={hours} {AVERAGE_FIELD}={float(grams)!r},generated_at={generated}i {second}"
        for zone, hours, grams, generated, second in zip(
            frame["region"].tolist(),
            frame["horizon_hours"].tolist(),
            frame["carbon_intensity_gco2_kwh"].tolist(),
            _seconds(frame["generated_at"]),
            _seconds(frame["point_time"]),
            strict=True,
        )
    ]


def _seconds(times: pd.Series) -> list[int]:
    return (times.astype("int64") // 1_000_000_000).tolist()


def average_intensity_lines(frame: pd.DataFrame, *, emission_factor_type: str, source: str) -> list[str]:
    """One line per validated ``AverageFrame`` row (NaN, out-of-range values and repeats already refused)."""
    prefixes = {
        zone: zone_prefix(AVERAGE_MEASUREMENT, zone, emission_factor_type, source) for zone in frame["zone"].unique()
    }
    seconds = _seconds(frame["point_time"])
    methods = frame["estimation_method"].astype(object).where(frame["estimation_method"].notna(), None).tolist()
    return [
        f"{prefixes[zone]} {AVERAGE_FIELD}={float(grams)!r},is_estimated={'true' if estimated else 'false'}"
        f"{'' if method is None else ',estimation_method=' + escape_string_field(method)} {second}"
        for zone, grams, estimated, method, second in zip(
            frame["zone"].tolist(),
            frame[AVERAGE_FIELD].tolist(),
            frame["is_estimated"].tolist(),
            methods,
            seconds,
            strict=True,
        )
    ]
