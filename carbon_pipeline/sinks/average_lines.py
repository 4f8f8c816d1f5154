"""Line protocol of average carbon intensity: measurement ``average_carbon_intensity``, field ``gco2eq_per_kwh``.

A measurement of its own, never ``carbon_intensity``: an average (what each kWh consumed in a zone emitted)
is a different quantity from WattTime's marginal MOER (what one more kWh would emit now), and a query
mixing them would mean nothing. Tags ``zone``, ``signal_type`` (``average_lifecycle`` or ``average_direct``)
and ``source`` in that order; fields ``gco2eq_per_kwh``, ``is_estimated`` and, when Electricity Maps names
it, ``estimation_method``; one point per zone and interval at the interval's start, in whole seconds.
"""

from __future__ import annotations

import pandas as pd

from carbon_pipeline.sinks.line_protocol import escape_string_field, tagged_prefix

AVERAGE_MEASUREMENT = "average_carbon_intensity"
AVERAGE_FIELD = "gco2eq_per_kwh"


def average_signal_type(emission_factor_type: str) -> str:
    """The ``signal_type`` tag: ``average_lifecycle`` or ``average_direct``, never a WattTime signal's name."""
    return f"average_{emission_factor_type}"


def average_intensity_lines(frame: pd.DataFrame, *, emission_factor_type: str, source: str) -> list[str]:
    """One line per validated ``AverageFrame`` row (NaN, out-of-range values and repeats already refused)."""
    signal_type = average_signal_type(emission_factor_type)
    prefixes = {
        zone: tagged_prefix(AVERAGE_MEASUREMENT, (("zone", zone), ("signal_type", signal_type), ("source", source)))
        for zone in frame["zone"].unique()
    }
    seconds = (frame["point_time"].astype("int64") // 1_000_000_000).tolist()
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
