"""The schedules: each 15-minute interval's measurement, forecast and signal index for the regions the plan
allows, in as few runs as the allowed regions' ranges permit; the hourly revision sweep; the daily plan read."""

import dagster as dg

from carbon_pipeline.access_gate import contiguous_blocks, requestable
from carbon_pipeline.dagster_private import UnresolvedAssetJobDefinition
from carbon_pipeline.partitions import REGION_DIMENSION, TIME_DIMENSION, interval_range_tags, interval_start
from carbon_pipeline.sensors.tick_log import listed
from carbon_pipeline.watttime.access import FORECAST, HISTORICAL, SIGNAL_INDEX

SCHEDULE_NAME = "carbon_intensity_every_15_minutes"
FORECAST_SCHEDULE_NAME = "carbon_forecast_every_15_minutes"
REVISION_SCHEDULE_NAME = "carbon_intensity_revisions_hourly"
INDEX_SCHEDULE_NAME = "carbon_signal_index_every_15_minutes"
# Between the measurement ticks (5, 20, 35, 50 by default) and the forecast ones (2, 17, 32, 47).
REVISION_CRON = "40 * * * *"
ACCESS_SCHEDULE_NAME = "watttime_access_daily"
# Once a day, at a minute no 15-minute tick uses: a plan changes when the subscription does, rarely.
ACCESS_CRON = "10 0 * * *"
INTERVAL_TAG = "carbon/interval"
AVERAGE_SCHEDULE_NAME = "average_carbon_intensity_hourly"
AVERAGE_FORECAST_SCHEDULE_NAME = "average_carbon_forecast_hourly"


def fifteen_minute_cron(delay_minutes: int) -> str:
    """``5,20,35,50 * * * *`` for a 5-minute delay: one tick per interval, after WattTime has published it.

    ``build_schedule_from_partitioned_job`` cannot be offset for 15-minute partitions, hence this cron.
    """
    minutes = sorted((delay_minutes + quarter * 15) % 60 for quarter in range(4))
    return f"{','.join(str(minute) for minute in minutes)} * * * *"


def build_carbon_intensity_schedule(
    job: UnresolvedAssetJobDefinition, partitions_def: dg.MultiPartitionsDefinition, delay_minutes: int
) -> dg.ScheduleDefinition:
    """The measured interval that just closed, ``delay_minutes`` after it closed (WattTime's publication lag)."""
    return build_interval_schedule(SCHEDULE_NAME, job, partitions_def, delay_minutes, HISTORICAL)


def build_forecast_schedule(
    job: UnresolvedAssetJobDefinition, partitions_def: dg.MultiPartitionsDefinition, delay_minutes: int
) -> dg.ScheduleDefinition:
    """The issue interval under way, ``delay_minutes`` after it started: its first forecast is then WattTime's newest.

    A schedule of its own rather than a second asset in the measurement run: the forecast is due at the
    start of an interval and the measurement after its end, and a forecast outage then never fails, delays
    or retries a measurement run (or the other way round); each asset's failures are alerted on their own.
    """
    return build_interval_schedule(FORECAST_SCHEDULE_NAME, job, partitions_def, delay_minutes, FORECAST)


def build_signal_index_schedule(
    job: UnresolvedAssetJobDefinition, partitions_def: dg.MultiPartitionsDefinition, delay_minutes: int
) -> dg.ScheduleDefinition:
    """The interval under way, ``delay_minutes`` after it started: WattTime serves its signal index only now."""
    return build_interval_schedule(INDEX_SCHEDULE_NAME, job, partitions_def, delay_minutes, SIGNAL_INDEX)


def build_interval_schedule(
    name: str,
    job: UnresolvedAssetJobDefinition,
    partitions_def: dg.MultiPartitionsDefinition,
    delay_minutes: int,
    endpoint: str,
) -> dg.ScheduleDefinition:
    """Each tick requests the regions the WattTime plan allows ``endpoint`` for (``access_gate``)."""
    regions = partitions_def.get_partitions_def_for_dimension(REGION_DIMENSION).get_partition_keys()
    intervals = partitions_def.get_partitions_def_for_dimension(TIME_DIMENSION)

    @dg.schedule(
        name=name,
        cron_schedule=fifteen_minute_cron(delay_minutes),
        job=job,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    def every_15_minutes(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest] | dg.SkipReason:
        """Requests the newest interval for every region the plan allows, as one run.

        Each run is a process of its own that takes seconds to start, so a run per region would not
        finish a hundred regions within the interval; one run fetches them side by side instead. The
        run key is the interval, so a tick evaluated twice never launches a second run. Ticks missed
        while the daemon was down are not caught up by Dagster; the gap-filling sensor requests
        those intervals. A region left out of the plan in the middle of the list splits the run in two,
        since a run covers a range of regions.
        """
        with dg.partition_loading_context(effective_dt=context.scheduled_execution_time):
            interval = intervals.get_last_partition_key()
        if interval is None:
            return []
        allowed, notes = requestable(context.instance, endpoint, regions)
        for note in notes:
            context.log.info(note)
        blocks = contiguous_blocks(allowed, regions)
        if not blocks:
            return dg.SkipReason(f"no configured region is in the WattTime plan for {endpoint}: {listed(notes)}")
        return [_interval_request(interval, block, len(blocks) > 1) for block in blocks]

    return every_15_minutes


def build_hourly_zone_schedule(
    job: UnresolvedAssetJobDefinition,
    partitions_def: dg.MultiPartitionsDefinition,
    delay_minutes: int,
    name: str = AVERAGE_SCHEDULE_NAME,
) -> dg.ScheduleDefinition:
    """Every zone's newest hour, ``delay_minutes`` past the hour, as one run keyed by the hour: the hour that just
    closed, or with issue partitions (``end_offset=1``) the hour under way, whose forecast is the newest.

    No plan gate: Electricity Maps serves the last hours of every zone a token may read, and a zone it
    refuses fails on its own in the run, named; the forecast's job exists only when the plan serves forecasts.
    """
    zones = tuple(partitions_def.get_partitions_def_for_dimension(REGION_DIMENSION).get_partition_keys())
    intervals = partitions_def.get_partitions_def_for_dimension(TIME_DIMENSION)

    @dg.schedule(
        name=name,
        cron_schedule=f"{delay_minutes} * * * *",
        job=job,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    def every_hour(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
        """Requests the newest hour for every zone; missed ticks of measured hours are the gap filler's."""
        with dg.partition_loading_context(effective_dt=context.scheduled_execution_time):
            interval = intervals.get_last_partition_key()
        return [] if interval is None else [_interval_request(interval, zones, split=False)]

    return every_hour


def _interval_request(interval: str, block: tuple[str, ...], split: bool) -> dg.RunRequest:
    """The run of ``block`` at ``interval``; its key is the interval alone unless the tick is split in runs."""
    run_key = f"{interval}:{block[0]}..{block[-1]}" if split else interval
    tags = interval_range_tags(block, interval_start(interval)) | {INTERVAL_TAG: interval}
    return dg.RunRequest(run_key=run_key, tags=tags)


def build_revision_schedule(job: UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    """The revision sweep every hour: WattTime revises hours after publishing, so a sweep an hour finds each soon.

    No run key: a tick the daemon missed needs no catching up, since the next sweep asks for every update
    since the last successful one.
    """
    return _running_schedule(
        REVISION_SCHEDULE_NAME,
        REVISION_CRON,
        job,
        "Rewrites the stored carbon_intensity points WattTime revised since the last sweep.",
    )


def build_access_schedule(job: UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    """The WattTime plan read again once a day, so a new or lapsed subscription reaches the schedules within a day."""
    return _running_schedule(
        ACCESS_SCHEDULE_NAME,
        ACCESS_CRON,
        job,
        "Reads /v3/my-access: which configured regions the WattTime plan allows, per endpoint.",
    )


def _running_schedule(
    name: str, cron: str, job: UnresolvedAssetJobDefinition, description: str
) -> dg.ScheduleDefinition:
    """A UTC schedule of ``job`` that runs as soon as it is deployed, with no toggle to find."""
    return dg.ScheduleDefinition(
        name=name,
        cron_schedule=cron,
        job=job,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=description,
    )
