"""One tick of a schedule of built definitions, evaluated against a fresh instance, as the daemon would."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import dagster as dg


def tick_requests(defs: dg.Definitions, name: str, at: datetime) -> Sequence[dg.RunRequest]:
    """The run requests of schedule ``name``'s tick at ``at``; the instance holds no run and no plan read."""
    schedule = defs.resolve_schedule_def(name)
    with (
        dg.instance_for_test() as instance,
        dg.build_schedule_context(
            instance=instance, repository_def=defs.get_repository_def(), scheduled_execution_time=at
        ) as context,
    ):
        return schedule.evaluate_tick(context).run_requests or []
