"""``python -m benchmarks.soak``: days of schedule ticks under random, seeded faults, then nothing may be lost.

For each seed, a fresh world: the WattTime simulator, a real InfluxDB server behind the v3 shim, a
webhook receiver and a Dagster instance (``support/outage_rig.py``). The schedule is evaluated at
every tick of the last ``--days`` days, in order, as the daemon would have evaluated it then, and
each tick's run is a real run of the real job (``support/daemon_harness.py``); the failure-alert
sensor is evaluated after each. Meanwhile the plan of ``benchmarks/soak_plan.py``, drawn from the
seed, injects WattTime faults (429/5xx, timeouts, resets, broken and bad data) and InfluxDB faults
(5xx, resets, the server down, replies lost after the write was stored), transient ones and outages
over consecutive ticks. Then the gap-filling sensor is evaluated until it requests nothing more, the
intervals whose data was refused are requested as the gap filler requests them once its 6-hour hold is
over, and the alert sensor is evaluated once more. The report (``benchmarks/soak_report.py``)
compares InfluxDB with the simulator's truth point by point and the alerts sent with the rule; the
exit status is 1 when anything was lost, wrong or duplicated, or an alert is missing or extra.

    python -m benchmarks.soak --days 2 --seeds 1 2 3
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from time import perf_counter

import dagster as dg

from benchmarks.soak_plan import Episode, episode_at, fault_plan
from benchmarks.soak_report import Outcome, SoakFigures, expected_alerts, render, sent_alerts, tally_points
from carbon_pipeline.assets.carbon_intensity import ASSET_NAME
from carbon_pipeline.coverage import floor_interval
from carbon_pipeline.partitions import INTERVAL, contiguous_windows, region_partition_key
from carbon_pipeline.run_outcomes import FailureKind
from carbon_pipeline.sensors.failure_alerts import SENSOR_NAME as ALERTS
from carbon_pipeline.sensors.gap_filler import MAX_RUN_INTERVALS, gap_fill_request
from carbon_pipeline.sensors.gap_filler import SENSOR_NAME as GAP_FILLER
from carbon_pipeline.settings import PipelineSettings
from carbon_pipeline.watttime.simulator import Fault, SimulatorConfig, SimulatorServer
from carbon_pipeline_tests.support.daemon_harness import InProcessDaemon
from carbon_pipeline_tests.support.outage_rig import DATABASE, OutageRig, outage_rig
from carbon_pipeline_tests.support.pipeline_harness import stored_points, truth, watttime_resource

REGIONS = ("CAISO_NORTH", "PJM_DC")
SEEDS = (1, 2, 3)
DELAY = timedelta(minutes=5)
TICKS_PER_DAY = 96
# The timeline ends this long before now, so each of its intervals is a gap to the gap filler when missing
# (its tick plus 15 minutes have passed).
DUE_MARGIN = timedelta(minutes=35)
GAP_FILL_MAX_RUNS = 20
GAP_FILL_TICKS = 50
# A run logs in to WattTime once; the simulator's 100 logins per 5 minutes would throttle a soak.
LOGIN_RATE_LIMIT = 100_000
HISTORICAL = "/v3/historical"
OUTLASTING = 1_000_000  # an outage's fault count: every request of its ticks fails; cleared when it ends
# The rig's WattTime client gives up retrying after 1 s, its timeout: one slow reply would fail the run. Here,
# as with the production defaults (30 s timeout, 120 s budget), a budget above the timeout retries it once.
WATTTIME_CLIENT = {"max_attempts": 2, "timeout_seconds": 1.0, "max_retry_seconds": 3.0}
TIMEOUT_DELAY_SECONDS = 2.0  # a reply slower than the client's timeout
ASSET_KEY = dg.AssetKey(ASSET_NAME)
# Runs fail by design here and each failure is counted in the report; the instance keeps every event.
SILENT_RUNS = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@dataclass(frozen=True)
class Injector:
    """Starts and ends an episode's fault on the simulator, the shim or the InfluxDB server itself."""

    simulator: SimulatorServer
    rig: OutageRig

    def begin(self, episode: Episode) -> None:
        count = 1 if episode.sort == "transient" else OUTLASTING
        name = episode.fault.name
        if episode.fault.layer == "WattTime":
            self.simulator.state.inject(watttime_fault(name, count, episode.region))
        elif name == "down":
            self.rig.shim.refuse_connections()
            self.rig.influxdb.stop()
        elif name.isdigit():
            self.rig.shim.inject("status", count, status=int(name))
        else:
            self.rig.shim.inject("reset" if name == "reset" else "lost_reply", count)

    def end(self, episode: Episode) -> None:
        self.simulator.state.clear_faults()
        self.rig.shim.reset()
        if episode.fault.name == "down":
            self.rig.influxdb.start()
            self.rig.shim.accept_connections()


def watttime_fault(name: str, count: int, region: str | None) -> Fault:
    """The simulator's fault for a plan's WattTime fault name, on the historical endpoint."""
    if name.isdigit():
        return Fault("status", count=count, path=HISTORICAL, status=int(name))
    if name == "timeout":
        return Fault("slow", count=count, path=HISTORICAL, delay_seconds=TIMEOUT_DELAY_SECONDS)
    return Fault(name, count=count, path=HISTORICAL, region=region)


@dataclass
class Soak:
    """One seed's world and timeline while it is played."""

    daemon: InProcessDaemon
    injector: Injector
    plan: list[Episode]
    first: datetime
    figures: SoakFigures

    @property
    def regions(self) -> tuple[str, ...]:
        return self.figures.regions

    def interval(self, index: int) -> datetime:
        return self.first + index * INTERVAL

    def play(self, index: int) -> Outcome:
        """Tick ``index`` with its episode's fault in place, then the alert sensor; what the alerts must see."""
        episode = episode_at(self.plan, index)
        if episode is not None and episode.first == index:
            self.injector.begin(episode)
            self.figures.episodes[episode.label] += 1
        tick = self.interval(index + 1) + DELAY
        (result,) = self.daemon.schedule_tick(tick)
        if episode is not None:
            self.figures.faults[episode.label] += 1
            if index == episode.end - 1:
                self.injector.end(episode)
        self.daemon.sensor_tick(ALERTS)
        fails = episode is not None and episode.fails_runs
        self.figures.expected_failed_runs += fails
        self.figures.failed_runs += not result.success
        if result.success == fails:
            what = episode.label if episode else "no fault"
            self.figures.surprises.append(
                f"tick {tick:%Y-%m-%d %H:%M} ({what}): run {result.run_id} "
                f"{'succeeded' if result.success else 'failed'}, expected to {'fail' if fails else 'succeed'}"
            )
        return self.outcome(episode, result.success)

    def outcome(self, episode: Episode | None, stored: bool) -> Outcome:
        if stored:
            return dict.fromkeys(self.regions)
        failed = episode.failed_regions(self.regions) if episode else self.regions
        kind = episode.fault.failure.value if episode else FailureKind.OTHER.value
        return {region: kind if region in failed else None for region in self.regions}

    def fill_gaps(self) -> None:
        """The gap filler's ticks until it requests nothing; then the refused intervals it holds back for 6 hours,
        requested as it requests them once the hold is over."""
        for _ in range(GAP_FILL_TICKS):
            _, runs = self.daemon.sensor_tick(GAP_FILLER)
            self._check(runs, "gap-filling")
            if not runs:
                break
            self.figures.gap_fill_runs += len(runs)
        held = self.held_back()
        self.figures.held_back = sum(len(starts) for starts in held.values())
        for region, starts in held.items():
            for window in contiguous_windows(region, starts):
                self._check([self.daemon.launch(gap_fill_request(piece)) for piece in window.pieces(MAX_RUN_INTERVALS)])

    def held_back(self) -> dict[str, list[datetime]]:
        """Intervals still not materialized whose tick's data was rejected: the gap filler's hold, not a loss."""
        materialized = self.daemon.instance.get_materialized_partitions(ASSET_KEY)
        held: dict[str, list[datetime]] = {}
        for episode in self.plan:
            if episode.region is None or episode.fault.failure != FailureKind.DATA_REJECTED:
                continue
            starts = [self.interval(index) for index in range(episode.first, episode.end)]
            absent = [start for start in starts if str(region_partition_key(episode.region, start)) not in materialized]
            held.setdefault(episode.region, []).extend(absent)
        return held

    def _check(self, runs: Sequence[dg.ExecuteInProcessResult], what: str = "held-back") -> None:
        self.figures.surprises += [
            f"{what} run {run.run_id} failed with every fault cleared" for run in runs if not run.success
        ]

    def tally(self, rig: OutageRig) -> None:
        ticks = self.figures.ticks
        expected = {
            (region, self.interval(index)): truth(region, self.interval(index), self.interval(index + 1))
            for region in self.regions
            for index in range(ticks)
        }
        window = range(int(self.first.timestamp()), int(self.interval(ticks).timestamp()))
        stored = {
            region: [point for point in stored_points(rig.influxdb, DATABASE, region) if point.time in window]
            for region in self.regions
        }
        self.figures.points = tally_points(expected, stored)


def soak(seed: int, days: float, regions: Sequence[str] = REGIONS) -> SoakFigures:
    """Play ``days`` of ticks under seed ``seed``'s faults, fill the gaps, and compare everything."""
    started = perf_counter()
    ticks = max(1, round(days * TICKS_PER_DAY))
    first = floor_interval(datetime.now(UTC) - DUE_MARGIN) - ticks * INTERVAL
    figures = SoakFigures(seed, days, tuple(regions), ticks)
    settings = PipelineSettings.model_validate(
        {
            "deployment": "prod",
            "regions": tuple(regions),
            "partitions_start": first,
            "schedule_delay_minutes": int(DELAY / timedelta(minutes=1)),
            "gap_fill_hours": math.ceil(ticks * INTERVAL / timedelta(hours=1)) + 1,
            "gap_fill_max_runs": GAP_FILL_MAX_RUNS,
        }
    )
    config = SimulatorConfig(publication_lag_seconds=0, login_rate_limit=LOGIN_RATE_LIMIT)
    with SimulatorServer(config) as simulator, outage_rig(simulator) as rig:
        resources = {**rig.resources, "watttime": watttime_resource(simulator.base_url, **WATTTIME_CLIENT)}
        daemon = InProcessDaemon(settings, resources, rig.instance, run_config=SILENT_RUNS)
        daemon.sensor_tick(ALERTS)  # the sensor starts from the present, as when it is enabled
        run = Soak(daemon, Injector(simulator, rig), fault_plan(seed, ticks, regions), first, figures)
        outcomes = [run.play(index) for index in range(ticks)]
        run.fill_gaps()
        daemon.sensor_tick(ALERTS)
        outcomes.append(dict.fromkeys(run.regions))  # every region stored again: each alerted streak recovers
        run.tally(rig)
        figures.alerts_expected = expected_alerts(outcomes, settings.alert_after_failures)
        figures.alerts_sent = sent_alerts(rig.receiver.payloads)
    figures.seconds = perf_counter() - started
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=float, default=2.0, help="simulated days of ticks per seed (default 2)")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS), help="one soak per seed (default 1 2 3)")
    parser.add_argument("--regions", nargs="+", default=list(REGIONS), help="regions (default CAISO_NORTH PJM_DC)")
    options = parser.parse_args(argv)
    started = perf_counter()
    failed = []
    for seed in options.seeds:
        figures = soak(seed, options.days, options.regions)
        print("\n".join(render(figures)), flush=True)
        failed += [seed] if figures.problems() else []
    verdict = f"FAILED for seed(s) {', '.join(map(str, failed))}" if failed else "passed"
    print(f"soak {verdict}: {len(options.seeds)} seed(s) x {options.days:g} day(s) in {perf_counter() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
