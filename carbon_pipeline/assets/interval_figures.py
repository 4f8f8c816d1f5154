"""Each materialized interval's own figures, computed once over a run's whole frame.

The UI plots a partitioned asset's numeric metadata partition by partition ("Plots" on the asset
page): an interval must carry the figures of its own points, not the run's, or a backfill draws a
flat step. A year of one region is 35,040 intervals, so the figures come from one groupby over the
run's points, not from a filter per interval.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import dagster as dg
import pandas as pd

from carbon_pipeline.partitions import INTERVAL, INTERVAL_KEY_FORMAT, REGION_DIMENSION, TIME_DIMENSION

FIGURE_DECIMALS = 3
UNKNOWN_MODEL = "unknown"
_INDEX = ["interval", "region"]


def interval_figures(frame: pd.DataFrame, interval_column: str | None = None) -> pd.DataFrame:
    """Per interval key and region that has points: ``points``, ``min``, ``mean``, ``max`` (gCO2/kWh), ``model_date``.

    An interval holds the points whose timestamps fall inside it (start inclusive); an hourly
    region's point belongs to the interval it starts in, so its other three intervals have none.
    A forecast's points lie ahead of the interval it was issued in: ``interval_column`` names the
    column holding each point's interval start instead.
    """
    moments = frame["point_time"].dt.floor(INTERVAL) if interval_column is None else frame[interval_column]
    starts = moments.rename("interval")
    grams = frame.groupby([starts, frame["region"]], sort=False)["carbon_intensity_gco2_kwh"]
    figures = grams.agg(["min", "mean", "max"]).assign(points=grams.size())
    figures = figures.join(_model_dates(frame, starts)).fillna({"model_date": UNKNOWN_MODEL})
    keys = figures.index.levels[0].strftime(INTERVAL_KEY_FORMAT)
    return figures.set_axis(figures.index.set_levels(keys, level="interval"), axis="index")


def _model_dates(frame: pd.DataFrame, starts: pd.Series) -> pd.Series:
    """The WattTime model dates of each interval's points, sorted and comma-separated.

    Nearly every interval has one; only the few with several are joined one by one.
    """
    dates = (
        frame[["region", "model_date"]]
        .assign(interval=starts)
        .dropna()
        .drop_duplicates()
        .sort_values("model_date")
        .set_index(_INDEX)["model_date"]
    )
    several = dates.index.duplicated(keep=False)
    joined = dates[several].groupby(level=_INDEX).agg(", ".join)
    return pd.concat([dates[~several], joined]).rename("model_date")


def in_time_order(keys: Sequence[dg.MultiPartitionKey]) -> list[dg.MultiPartitionKey]:
    """Oldest interval first, regions of one interval by name: Dagster's latest materialization is then the newest."""
    return sorted(keys, key=_index_entry)


def interval_metadata(
    figures: pd.DataFrame, keys: Sequence[dg.MultiPartitionKey], data_source: str
) -> Iterator[dict[str, Any]]:
    """The metadata of each of ``keys``, in their order, built one at a time from ``figures``.

    An interval without a point of its own (an hourly region's) says so with ``points`` 0.
    Dagster keeps every event of a step in memory until the step ends, so the values that repeat
    from interval to interval (data source, model date, point count) are one object each, not
    35,040 copies in a year's run.
    """
    shared = _SharedValues()
    wanted = pd.MultiIndex.from_tuples([_index_entry(key) for key in keys], names=_INDEX)
    for row in figures.reindex(wanted).itertuples(index=False):
        yield _metadata(row._asdict(), shared.text(data_source), shared)


def _index_entry(key: dg.MultiPartitionKey) -> tuple[str, str]:
    """(interval key, region): interval keys sort in time order (``INTERVAL_KEY_FORMAT``)."""
    dimensions = key.keys_by_dimension
    return dimensions[TIME_DIMENSION], dimensions[REGION_DIMENSION]


def _metadata(row: Mapping[str, Any], data_source: dg.MetadataValue, shared: _SharedValues) -> dict[str, Any]:
    if pd.isna(row["points"]):
        none = shared.count(0)
        return {"data_source": data_source, "points": none, "dagster/row_count": none}
    points = shared.count(int(row["points"]))
    return {
        "data_source": data_source,
        "watttime_model_date": shared.text(row["model_date"]),
        "points": points,
        "dagster/row_count": points,
        "gco2_kwh_min": round(float(row["min"]), FIGURE_DECIMALS),
        "gco2_kwh_mean": round(float(row["mean"]), FIGURE_DECIMALS),
        "gco2_kwh_max": round(float(row["max"]), FIGURE_DECIMALS),
    }


class _SharedValues:
    """One metadata value per distinct text or count, handed out again each time it recurs."""

    def __init__(self) -> None:
        self._texts: dict[str, dg.MetadataValue] = {}
        self._ints: dict[int, dg.MetadataValue] = {}

    def text(self, value: str) -> dg.MetadataValue:
        if value not in self._texts:
            self._texts[value] = dg.MetadataValue.text(value)
        return self._texts[value]

    def count(self, value: int) -> dg.MetadataValue:
        if value not in self._ints:
            self._ints[value] = dg.MetadataValue.int(value)
        return self._ints[value]
