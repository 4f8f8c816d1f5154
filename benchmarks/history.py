"""Costs that must not grow with the asset's history: 20 regions, 28 and 730 days already materialized.

For each history length the benchmark records a materialization per region and interval of the
whole partition window (a rolling ``CARBON_PARTITIONS_START=<days>d``) into the repository's
embedded SQLite instance (see ``history_seed``), then measures what runs every few minutes or on
every range run, against the WattTime simulator and a real InfluxDB on loopback:

- the freshness check run on its own, as the asset's Checks tab runs it: the check step's own
  duration, best of three runs (a run that materializes the asset skips the check: its step waits
  on an output the asset, which records each interval's materialization itself, does not yield);
- a gap-filling sensor tick and a freshness sensor tick, evaluated as the daemon evaluates them
  (best of three: the first lookups of a large SQLite file wait for the disk);
- the CLI's one-day range step: ``dagster asset materialize --select carbon_intensity
  --partition-range`` for one region's day, start to exit.

Each must stay flat: the longer history's figure at most twice the shorter one's plus half a second.

    python -m benchmarks.history --history-days 28 730
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import perf_counter

import dagster as dg

from benchmarks.data_path import TOKEN
from benchmarks.history_seed import seed_history
from benchmarks.stack import DATABASE, Services, dagster_home, deployment_env, instance_in, services
from carbon_pipeline.coverage import floor_interval
from carbon_pipeline.definitions import assemble_definitions
from carbon_pipeline.demo import QUIET_LOGS
from carbon_pipeline.notifier import AlertNotifier
from carbon_pipeline.partitions import INTERVAL, RANGE_END_TAG, RANGE_START_TAG, region_range_tags
from carbon_pipeline.sensors.freshness import CHECK_NAME
from carbon_pipeline.sensors.freshness import SENSOR_NAME as FRESHNESS
from carbon_pipeline.sensors.gap_filler import SENSOR_NAME as GAP_FILLER
from carbon_pipeline.settings import PipelineSettings
from carbon_pipeline.sinks.influxdb import InfluxDBResource
from carbon_pipeline.watttime.resource import WattTimeResource
from carbon_pipeline.watttime.simulator import SIMULATOR_PASSWORD, SIMULATOR_USERNAME
from carbon_pipeline.watttime.simulator.signal import synthetic_regions
from carbon_pipeline_tests.support.dagster_dev import DAGSTER, REPO

ASSET_KEY = dg.AssetKey("carbon_intensity")
HISTORY_DAYS = (28, 730)
HISTORY_REGIONS = 20
FLAT_FACTOR = 2.0
FLOOR_SECONDS = 0.5
REPEATS = 3
CLI_TIMEOUT_SECONDS = 600


@dataclass(frozen=True)
class HistoryCosts:
    """What one history length costs; every figure but the first two is in seconds."""

    days: int
    events: int
    seed_seconds: float
    check_run: float
    gap_filler_tick: float
    freshness_tick: float
    cli_range_step: float


# The measured figures of ``HistoryCosts``, with what they are called in the printed table.
MEASURES = {
    "check_run": "freshness check run on its own",
    "gap_filler_tick": "gap-filling sensor tick",
    "freshness_tick": "freshness sensor tick",
    "cli_range_step": "CLI one-day range step (dagster asset materialize)",
}


@dataclass(frozen=True)
class Flatness:
    """One measure at both history lengths, against the flat target."""

    measure: str
    short_seconds: float
    long_seconds: float

    @property
    def limit_seconds(self) -> float:
        return FLAT_FACTOR * self.short_seconds + FLOOR_SECONDS

    @property
    def met(self) -> bool:
        return self.long_seconds <= self.limit_seconds


@dataclass(frozen=True)
class HistoryFigures:
    regions: int
    short: HistoryCosts
    long: HistoryCosts

    @property
    def target(self) -> str:
        return f"{self.long.days} d <= {FLAT_FACTOR:g}x {self.short.days} d + {FLOOR_SECONDS:g} s"

    def comparisons(self) -> list[Flatness]:
        return [
            Flatness(label, getattr(self.short, name), getattr(self.long, name)) for name, label in MEASURES.items()
        ]

    def lines(self) -> list[str]:
        """The table ``main`` prints: seeding, then each measure at both lengths and whether it stayed flat."""
        short, long = self.short, self.long
        rows = [("measure", f"{short.days} days", f"{long.days} days", "target", "")]
        rows.append(
            (
                "seeding the history (events in s)",
                f"{short.events:,} in {short.seed_seconds:.1f}",
                f"{long.events:,} in {long.seed_seconds:.1f}",
                "",
                "",
            )
        )
        for flat in self.comparisons():
            rows.append(
                (
                    f"{flat.measure} (s)",
                    f"{flat.short_seconds:.2f}",
                    f"{flat.long_seconds:.2f}",
                    f"<= {flat.limit_seconds:.2f}",
                    "met" if flat.met else "MISSED",
                )
            )
        widths = [max(len(row[column]) for row in rows) for column in range(4)]
        return [
            "  ".join([*(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)), row[4]])
            for row in rows
        ]


def measure_history(history_days: Sequence[int], regions: int = HISTORY_REGIONS) -> HistoryFigures:
    short, long = (measure_history_costs(days, regions) for days in sorted(history_days))
    return HistoryFigures(regions, short, long)


def measure_history_costs(days: int, regions: int) -> HistoryCosts:
    names = list(synthetic_regions(regions))
    with (
        tempfile.TemporaryDirectory(prefix="carbon-bench-") as workdir,
        services(0.0, synthetic_regions=regions) as stack,
        dagster_home(Path(workdir), "sqlite") as (home, _),
    ):
        env = deployment_env(stack, home, {}, ",".join(names), CARBON_PARTITIONS_START=f"{days}d")
        now = datetime.now(UTC)
        settings = PipelineSettings.from_env(env, now)
        resources = _resources(stack)
        definitions = assemble_definitions(settings, resources)
        day = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
        tags = region_range_tags(names[0], day, day + timedelta(days=1) - INTERVAL)
        with instance_in(home) as instance:
            seeded = seed_history(instance, ASSET_KEY, names, settings.partitions_start, floor_interval(now))
            gap_filler = best_tick_seconds(definitions.resolve_sensor_def(GAP_FILLER), instance, resources)
            freshness = best_tick_seconds(definitions.resolve_sensor_def(FRESHNESS), instance, resources)
            check = min(check_run_seconds(definitions, instance) for _ in range(REPEATS))
        cli = cli_range_step_seconds(env, tags)
    return HistoryCosts(days, seeded.events, seeded.seconds, check, gap_filler, freshness, cli)


def _resources(stack: Services) -> dict[str, object]:
    return {
        "watttime": WattTimeResource(
            username=SIMULATOR_USERNAME, password=SIMULATOR_PASSWORD, base_url=stack.watttime_url
        ),
        "point_sink": InfluxDBResource(host=stack.influxdb_write_url, token=TOKEN, database=DATABASE),
        "alert_notifier": AlertNotifier(),
    }


def best_tick_seconds(sensor: dg.SensorDefinition, instance: dg.DagsterInstance, resources: dict[str, object]) -> float:
    """The fastest of a few evaluations of the sensor with no cursor, as the daemon's first tick sees it."""

    def tick() -> None:
        with dg.build_sensor_context(instance=instance, resources=resources) as context:
            sensor(context)

    return min(_seconds(tick) for _ in range(REPEATS))


def check_run_seconds(definitions: dg.Definitions, instance: dg.DagsterInstance) -> float:
    """The freshness check's step duration in a run of the check alone, as the Checks tab launches it."""
    job = definitions.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection=set(), asset_check_selection={dg.AssetCheckKey(ASSET_KEY, CHECK_NAME)}
    )
    result = job.execute_in_process(instance=instance, run_config=QUIET_LOGS)
    (duration_ms,) = [
        event.step_success_data.duration_ms
        for event in result.all_events
        if event.is_step_success and str(event.step_key).endswith(CHECK_NAME)
    ]
    return duration_ms / 1000


def cli_range_step_seconds(env: dict[str, str], tags: dict[str, str]) -> float:
    """``dagster asset materialize`` of ``tags``' range, selecting the asset as the README does: start to exit."""
    command = [
        str(DAGSTER),
        "asset",
        "materialize",
        "-m",
        "carbon_pipeline.definitions",
        "--select",
        ASSET_KEY.to_user_string(),
        "--partition-range",
        f"{tags[RANGE_START_TAG]}...{tags[RANGE_END_TAG]}",
    ]
    started = perf_counter()
    done = subprocess.run(
        command, env=env, cwd=REPO, capture_output=True, text=True, timeout=CLI_TIMEOUT_SECONDS, check=False
    )
    seconds = perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"dagster asset materialize failed: {done.stderr[-3000:]}")
    return seconds


def _seconds(work: Callable[[], object]) -> float:
    started = perf_counter()
    work()
    return perf_counter() - started


def add_history_days_option(parser: argparse.ArgumentParser) -> None:
    """``--history-days SHORT LONG``, for this benchmark and for ``python -m benchmarks``."""
    parser.add_argument(
        "--history-days",
        type=int,
        nargs=2,
        default=HISTORY_DAYS,
        metavar=("SHORT", "LONG"),
        help="the two history lengths compared, in days (default 28 730)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.history", description=(__doc__ or "").splitlines()[0])
    add_history_days_option(parser)
    parser.add_argument("--regions", type=int, default=HISTORY_REGIONS, help="configured regions (default 20)")
    args = parser.parse_args(argv)
    figures = measure_history(args.history_days, args.regions)
    print(f"history costs, {figures.regions} regions, embedded SQLite; target {figures.target}")
    print("\n".join(figures.lines()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
