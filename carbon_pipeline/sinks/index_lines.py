"""Line protocol of WattTime's signal index: measurement ``carbon_signal_index``, field ``percentile``.

A measurement of its own, never ``carbon_intensity``: a percentile is no lbs/MWh, and a query averaging
the two would mean nothing. Its series tags are ``carbon_intensity``'s (``series_prefix``: region,
grid_operator, signal_type, source), with the signal type suffixed ``_index`` (``co2_moer_index``) so that
no query selecting ``signal_type = 'co2_moer'`` ever finds a percentile. One point per region and interval,
at the point time WattTime gave (whole seconds), with ``model_date`` when WattTime names the model.
"""

from __future__ import annotations

import pandas as pd

from carbon_pipeline.sinks.line_protocol import model_date_field, series_prefix

SIGNAL_INDEX_MEASUREMENT = "carbon_signal_index"
INDEX_SUFFIX = "_index"


def index_signal_type(signal_type: str) -> str:
    """The ``signal_type`` tag of the index of a signal: ``co2_moer_index`` for co2_moer."""
    return signal_type + INDEX_SUFFIX


def signal_index_lines(frame: pd.DataFrame, *, signal_type: str, source: str) -> list[str]:
    """One line per validated ``SignalIndexFrame`` row."""
    tag = index_signal_type(signal_type)
    seconds = (frame["point_time"].astype("int64") // 1_000_000_000).tolist()
    models = frame["model_date"].astype(object).where(frame["model_date"].notna(), None).tolist()
    return [
        f"{series_prefix(region, tag, source, SIGNAL_INDEX_MEASUREMENT)} "
        f"percentile={float(percentile)!r}{model_date_field(model)} {second}"
        for region, percentile, model, second in zip(
            frame["region"].tolist(), frame["percentile"].tolist(), models, seconds, strict=True
        )
    ]
