"""Each interval's own figures from a run's frame: the cases a simulator run rarely produces."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pandas as pd

from carbon_pipeline.assets.interval_figures import in_time_order, interval_figures, interval_metadata
from carbon_pipeline.partitions import region_partition_key

DAY = datetime(2025, 1, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def _frame(rows: list[tuple[str, datetime, float, str | None]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["region", "point_time", "carbon_intensity_gco2_kwh", "model_date"])
    return frame.astype({"point_time": "datetime64[ns, UTC]"})


def _metadata(frame: pd.DataFrame, *keys: tuple[str, datetime]) -> list[dict[str, object]]:
    """Each interval's metadata as the UI shows it (the values, not their wrappers)."""
    partition_keys = [region_partition_key(region, start) for region, start in keys]
    metadata = interval_metadata(interval_figures(frame), partition_keys, "simulator")
    recorded = [dg.AssetMaterialization("carbon_intensity", metadata=own).metadata for own in metadata]
    return [{name: value.value for name, value in own.items()} for own in recorded]


def test_values_that_recur_from_interval_to_interval_are_one_object() -> None:
    """Dagster holds a step's events until it ends: a year of intervals must not hold a copy of each."""
    frame = _frame([("PJM_DC", DAY + n * 5 * MINUTE, 100.0 + n, "2023-03-01") for n in range(6)])
    keys = [region_partition_key("PJM_DC", DAY), region_partition_key("PJM_DC", DAY + 15 * MINUTE)]
    first, second = interval_metadata(interval_figures(frame), keys, "simulator")
    assert all(first[name] is second[name] for name in ("data_source", "watttime_model_date", "points"))


def test_an_interval_with_points_of_two_models_names_both_and_a_point_without_one_adds_nothing() -> None:
    frame = _frame(
        [
            ("CAISO_NORTH", DAY, 100.0, "2024-06-01"),
            ("CAISO_NORTH", DAY + 5 * MINUTE, 200.0, "2023-03-01"),
            ("CAISO_NORTH", DAY + 10 * MINUTE, 300.0, None),
            ("CAISO_NORTH", DAY + 15 * MINUTE, 400.0, "2023-03-01"),
        ]
    )
    first, second = _metadata(frame, ("CAISO_NORTH", DAY), ("CAISO_NORTH", DAY + 15 * MINUTE))
    assert first["watttime_model_date"] == "2023-03-01, 2024-06-01"
    assert (first["points"], first["gco2_kwh_min"], first["gco2_kwh_mean"], first["gco2_kwh_max"]) == (3, 100, 200, 300)
    assert (second["points"], second["watttime_model_date"]) == (1, "2023-03-01")


def test_figures_are_rounded_to_three_decimals_and_an_interval_whose_points_lack_a_model_says_unknown() -> None:
    frame = _frame([("IE", DAY, 1.0, None), ("IE", DAY + 5 * MINUTE, 1.0, None), ("IE", DAY + 10 * MINUTE, 2.0, None)])
    (own,) = _metadata(frame, ("IE", DAY))
    assert own["gco2_kwh_mean"] == 1.333 and own["watttime_model_date"] == "unknown"


def test_an_interval_without_a_point_of_its_own_has_only_its_count() -> None:
    hourly = _frame([("IE", DAY, 250.0, "2023-03-01")])
    keys = [("IE", DAY + n * 15 * MINUTE) for n in range(4)]
    assert [own["points"] for own in _metadata(hourly, *keys)] == [1, 0, 0, 0]
    assert _metadata(hourly, keys[1]) == [{"data_source": "simulator", "points": 0, "dagster/row_count": 0}]


def test_keys_are_ordered_by_interval_then_region() -> None:
    keys = [region_partition_key(region, DAY + n * 15 * MINUTE) for n in (1, 0) for region in ("PJM_DC", "IE")]
    assert [str(key) for key in in_time_order(keys)] == [
        "IE|2025-01-01-00:00",
        "PJM_DC|2025-01-01-00:00",
        "IE|2025-01-01-00:15",
        "PJM_DC|2025-01-01-00:15",
    ]
