"""``carbon-pipeline``: the demo run and the standalone WattTime simulator."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from carbon_pipeline.deployments import DEFAULT_DAGSTER_HOME
from carbon_pipeline.partitions import INTERVAL, TIME_DIMENSION, interval_key, interval_start, region_range_tags
from carbon_pipeline.simulator.server import main as simulator_main

DEMO_HOURS = 24
# The run's full event log is in the UI; the terminal only needs warnings and the summary.
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="carbon-pipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help=f"materialize the last {DEMO_HOURS} hours on the local deployment")
    commands.add_parser(
        "simulator", help="serve the WattTime simulator (pass --help after it for options)", add_help=False
    )
    args, rest = parser.parse_known_args(argv)
    if args.command == "simulator":
        return simulator_main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return demo()


def demo() -> int:
    """One single-run backfill per region over the last day, on the local instance, as the UI would launch it."""
    os.environ.setdefault("DAGSTER_HOME", str(Path(DEFAULT_DAGSTER_HOME).resolve()))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    # The demo never touches real services, whatever the shell says; definitions read this at import.
    os.environ["DAGSTER_DEPLOYMENT"] = "local"
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    definitions = importlib.import_module("carbon_pipeline.definitions")
    job = definitions.defs.resolve_job_def(definitions.JOB_NAME)
    first, last = demo_intervals(job, datetime.now(UTC))
    with dg.DagsterInstance.get() as instance:
        results = [_materialize_region(job, instance, region, first, last) for region in definitions.SETTINGS.regions]
    print(f"Dagster instance: {os.environ['DAGSTER_HOME']}")
    print("Open the UI with `make ui` (http://127.0.0.1:3000) to see the runs, partitions and metadata.")
    return 0 if all(results) else 1


def demo_intervals(job: dg.JobDefinition, now: datetime) -> tuple[datetime, datetime]:
    """Starts of the first and last closed 15-minute intervals of the last day, as the schedule sees them."""
    partitions = job.partitions_def
    assert isinstance(partitions, dg.MultiPartitionsDefinition)
    with dg.partition_loading_context(effective_dt=now):
        last_key = partitions.get_partitions_def_for_dimension(TIME_DIMENSION).get_last_partition_key()
    assert last_key is not None, "the partitions start after now"
    last = interval_start(last_key)
    return last - (DEMO_HOURS * 4 - 1) * INTERVAL, last


def _materialize_region(
    job: dg.JobDefinition, instance: dg.DagsterInstance, region: str, first: datetime, last: datetime
) -> bool:
    tags = region_range_tags(region, first, last)
    result = job.execute_in_process(instance=instance, tags=tags, run_config=QUIET_LOGS, raise_on_error=False)
    if not result.success:
        print(f"{region}: run {result.run_id} failed; see the UI or `dagster run logs`.", file=sys.stderr)
        return False
    metadata = _materialization_metadata(result)
    print(
        f"{region}: {metadata['points_written'].value} points for intervals {interval_key(first)} to "
        f"{interval_key(last)} (UTC) "
        f"written to {metadata['destination'].value} [{metadata['data_source'].value}]"
    )
    return True


def _materialization_metadata(result: dg.ExecuteInProcessResult) -> dict[str, dg.MetadataValue]:
    event = result.get_asset_materialization_events()[0]
    return dict(event.materialization.metadata)


if __name__ == "__main__":
    sys.exit(main())
