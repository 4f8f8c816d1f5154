"""The events a run of a partitioned asset yields: a materialization per interval, and its validation check.

Every asset of the pipeline records its intervals the same way (one event each, oldest first, with the
interval's own figures) and reports data it refused the same way (one failed check listing every value,
timestamp and rule), so the UI reads alike whichever asset a user opens.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import dagster as dg
import pandas as pd

from carbon_pipeline.assets.interval_figures import in_time_order, interval_metadata
from carbon_pipeline.dagster_private import MULTIDIMENSIONAL_PARTITION_PREFIX
from carbon_pipeline.partitions import REGION_DIMENSION, TIME_DIMENSION
from carbon_pipeline.validation import DataRejected

FAILURE_CASE_ROWS = 50
# Tag names of a partition key's dimensions, made once rather than per materialization.
_PARTITION_TAGS = {name: f"{MULTIDIMENSIONAL_PARTITION_PREFIX}{name}" for name in (REGION_DIMENSION, TIME_DIMENSION)}


def interval_materializations(
    asset_key: dg.AssetKey,
    keys: Sequence[dg.MultiPartitionKey],
    regions: set[str],
    figures: pd.DataFrame,
    summary: dict[str, Any],
    extra: Mapping[str, dict[str, Any]] | None = None,
) -> Iterator[dg.AssetMaterialization]:
    """One materialization per interval of the written ``regions``, oldest first, each with its own figures.

    When a run fails, the regions it did write are still recorded, so only the failed ones stay
    missing. A run of one partition (one region's scheduled interval) also carries the run's
    summary there; a range leaves it on the check result, or a year would store it 35,040 times.
    ``extra`` adds metadata of an asset's own to the keys (as text) it names.
    """
    written = in_time_order([key for key in keys if key.keys_by_dimension[REGION_DIMENSION] in regions])
    whole_run = summary if len(keys) == 1 else {}
    own_extra = extra or {}
    for key, own in zip(written, interval_metadata(figures, written, summary["data_source"]), strict=True):
        yield dg.AssetMaterialization(
            asset_key=asset_key,
            partition=key,
            metadata=whole_run | own | own_extra.get(str(key), {}),
            tags=partition_tags(key),
        )


def partition_tags(key: dg.MultiPartitionKey) -> dict[str, str]:
    """The tags Dagster gives a multi-partition materialization, from which it reads the key's dimensions back."""
    return {_PARTITION_TAGS[name]: value for name, value in key.keys_by_dimension.items()}


def failed_check(check_name: str, rejections: Sequence[DataRejected]) -> dg.AssetCheckResult:
    """The blocking data check, failed, with every refused value of every region of the run."""
    cases = pd.concat(
        [rejected.failure_cases for rejected in rejections],
        keys=[rejected.window.region for rejected in rejections],
        names=["region"],
    ).reset_index(level="region")
    return dg.AssetCheckResult(
        check_name=check_name,
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        description="\n".join(str(rejected) for rejected in rejections),
        metadata={
            "region": ", ".join(sorted({rejected.window.region for rejected in rejections})),
            "interval": "; ".join(rejected.window.describe() for rejected in rejections),
            "num_failures": len(cases),
            "failure_cases": dg.MetadataValue.md(
                cases.head(FAILURE_CASE_ROWS).to_markdown(index=False, disable_numparse=True)
            ),
        },
    )
