"""Fault matrix: each way WattTime or InfluxDB can misbehave, injected into one materialization.

Every case runs the real asset on a shared Dagster instance against the shared WattTime simulator and
a fresh InfluxDB database behind a fresh shim, and checks:

(a) the outcome: the retry policy absorbed the fault and the data is exact, or the run failed with a
    message naming the problem, the region and the interval, after exactly the expected calls;
(b) what reached InfluxDB: nothing for a rejected or failed run, for a partial write exactly the
    lines InfluxDB accepted, and for a fault that hit one region of several exactly the other
    regions' points; never a point that differs from the simulator's truth;
(c) recovery: once the fault clears, re-materializing the same interval leaves exactly the
    simulator's truth in InfluxDB and the interval materialized.

Each case gets its own day, so partitions never overlap on the shared instance, and short retry
budgets and timeouts keep the whole matrix well under two minutes. Outcomes and messages are
collected into the table that ``fault_report`` prints at the end of the session.

The scene a case runs in and the checks every case passes are in ``support/fault_matrix.py``, the ways
to provoke and clear a fault in ``support/fault_arrangements.py``; this module holds the table of cases.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from carbon_pipeline.watttime.simulator import SimulatorServer
from carbon_pipeline_tests.support.fault_arrangements import (
    SHARD_BOUNDARY,
    body_limit_lifted,
    data_incomplete,
    data_rejected,
    database_created,
    database_dropped,
    from_shard_boundary,
    influxdb_back,
    influxdb_down,
    influxdb_fails,
    influxdb_recovers,
    integer_moer_in_shard,
    measurement_dropped,
    nothing,
    on_second_data_call,
    shim_fault,
    simulator_fault,
    small_body_limit,
    watttime_fails,
    watttime_recovers,
    without_line,
)
from carbon_pipeline_tests.support.fault_matrix import (
    QUARTER,
    FaultCase,
    Scene,
    assert_calls,
    assert_failure_names_everything,
    assert_recovers_after_clearing,
    clear_queued_faults,
    expected_after_fault,
    observed,
    report,
)
from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.support.influxdb_shim import InfluxDBShim
from carbon_pipeline_tests.support.pipeline_harness import check_evaluation, metadata_by_partition

FIRST_DAY = datetime(2025, 2, 3, tzinfo=UTC)
SHORT_TIMEOUT_SECONDS = 0.3
SLOW_SECONDS = 1.0
RETRY_AFTER_SECONDS = 1
# Ten times the longest backoff INFLUXDB_OPTIONS allow and within their budget: only a client that
# honours the header leaves this long between the refused write and its retry.
INFLUXDB_RETRY_AFTER_SECONDS = 2.0
# Adjacent in the partitions' region order: a range from one to the other covers exactly these two.
TWO_REGIONS = ("CAISO_NORTH", "PJM_DC")


def each_point_keeps_its_model_date(scene: Scene, result: dg.ExecuteInProcessResult) -> None:
    """One region's reply came from another model: its points and its interval say so, the other region's do not.

    The run's summary, on its check result, names both.
    """
    assert check_evaluation(result).metadata["watttime_model_date"].value == "2023-03-01, 2024-06-01"
    dates = {frozenset(scene.model_dates(region)) for region in TWO_REGIONS}
    assert dates == {frozenset({"2024-06-01"}), frozenset({"2023-03-01"})}
    for partition, metadata in metadata_by_partition(result).items():
        (stored,) = scene.model_dates(partition.split("|")[0])
        assert metadata["watttime_model_date"] == stored, partition


def retry_came_after_retry_after(scene: Scene, result: dg.ExecuteInProcessResult) -> None:
    """The gap the shim saw between the refused write and its retry; ignoring the header, the backoff
    would have sent the retry within ``backoff_max_seconds`` (0.2 s) of the refusal."""
    refused, retried = scene.shim.requests
    gap = retried.received_at - refused.received_at
    assert gap >= INFLUXDB_RETRY_AFTER_SECONDS, f"the retry came {gap:.2f} s after the 503"


def the_repeat_is_logged(scene: Scene, result: dg.ExecuteInProcessResult) -> None:
    """The run's log names the region, the interval, the repeated point's time and how many copies came."""
    (window,) = scene.windows()
    repeated = (window.start + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")  # the middle of three points
    expected = (
        f"{window.describe()}: WattTime sent 1 point(s) more than once with the same value; kept one of each: "
        f"{repeated} (2 copies)"
    )
    logs = scene.instance.all_logs(result.run_id)
    warnings = [entry.user_message for entry in logs if entry.level == logging.WARNING]
    assert expected in warnings, warnings


_CASES = [
    # ----- WattTime: authentication and plan
    watttime_recovers(
        "401 mid-run: token invalidated between calls, one re-login",
        on_second_data_call("unauthorized"),
        calls=3,
        logins=2,
        regions=TWO_REGIONS,
    ),
    watttime_fails(
        "401 again after re-login",
        simulator_fault("unauthorized", count=2),
        "rejected a freshly issued token",
        calls=2,
        logins=2,
    ),
    watttime_fails("403 plan (Invalid scope)", simulator_fault("invalid_scope"), "plan does not cover region"),
    watttime_fails("404 unknown region", simulator_fault("status", status=404), "HTTP 404"),
    watttime_fails("422 unprocessable query", simulator_fault("status", status=422), "HTTP 422"),
    # ----- WattTime: transient replies the retry policy absorbs
    watttime_recovers(
        "429 with Retry-After",
        simulator_fault("status", status=429, retry_after=RETRY_AFTER_SECONDS),
        min_seconds=RETRY_AFTER_SECONDS,
    ),
    watttime_recovers("429 without Retry-After", simulator_fault("status", status=429)),
    watttime_recovers("500 internal error", simulator_fault("status", status=500)),
    watttime_recovers("502 bad gateway", simulator_fault("status", status=502)),
    watttime_recovers("503 unavailable", simulator_fault("status", status=503)),
    watttime_recovers("504 gateway timeout", simulator_fault("status", status=504)),
    watttime_fails(
        "503 beyond the retry budget",
        simulator_fault("status", status=503, count=2),
        "gave up after 2 attempt(s)",
        "HTTP 503",
        calls=2,
        watttime={"max_attempts": 2},
    ),
    watttime_recovers(
        "timeout: reply slower than the client timeout",
        simulator_fault("slow", delay_seconds=SLOW_SECONDS),
        watttime={"timeout_seconds": SHORT_TIMEOUT_SECONDS},
    ),
    watttime_recovers("connection reset", simulator_fault("reset")),
    watttime_recovers("malformed JSON (200)", simulator_fault("malformed_json")),
    watttime_fails(
        "malformed JSON on every attempt",
        simulator_fault("malformed_json", count=2),
        "not valid JSON",
        calls=2,
        watttime={"max_attempts": 2},
    ),
    watttime_recovers("truncated body", simulator_fault("truncated")),
    watttime_fails("HTML page from CloudFront (403)", simulator_fault("html"), "HTTP 403", "Server: CloudFront"),
    # ----- WattTime: a 200 reply with wrong content
    data_incomplete("empty data, long after publication", "empty", "WattTime returned no points", "published long ago"),
    data_rejected("null values", "nulls", "None"),
    data_rejected("out-of-range values", "out_of_range", "99999.0", "-5.0"),
    FaultCase(
        "exact duplicate point (kept once, with a warning)",
        "WattTime",
        "accepted",
        simulator_fault("duplicates"),
        verify=the_repeat_is_logged,
    ),
    data_rejected("duplicate point with another value", "conflicting_duplicates", "multiple_fields_uniqueness"),
    data_rejected("wrong units", "wrong_units", "'percentile'"),
    data_rejected("point outside the window", "outside_window", "in_range"),
    data_rejected("non-numeric value", "non_numeric", "'n/a'"),
    data_incomplete("missing point", "missing_point", "gap in WattTime's data: 2 of 3 points"),
    FaultCase(
        "out-of-range values in one region of a two-region run (the other is written)",
        "WattTime",
        "isolated",
        simulator_fault("out_of_range"),
        ("nothing written", "99999.0"),
        calls=2,
        regions=TWO_REGIONS,
        rejected=True,
    ),
    FaultCase(
        "mixed model dates in one run (two regions)",
        "WattTime",
        "accepted",
        simulator_fault("model_date"),
        calls=2,
        regions=TWO_REGIONS,
        verify=each_point_keeps_its_model_date,
    ),
    # ----- InfluxDB
    influxdb_fails(
        "server down (connection refused)",
        influxdb_down,
        influxdb_back,
        "NewConnectionError",
        "failed after 3 attempt(s)",
        writes=0,
    ),
    influxdb_fails(
        "401 bad token", nothing, clear_queued_faults, "HTTP 401", "not authenticated", influxdb={"token": "wrong"}
    ),
    influxdb_fails("404 database not found", database_dropped, database_created, "HTTP 404", "database not found"),
    influxdb_fails("413 request too large", small_body_limit, body_limit_lifted, "HTTP 413", "max request size"),
    influxdb_recovers("429 too many requests", shim_fault("status", status=429)),
    influxdb_recovers("500 internal error", shim_fault("status", status=500)),
    influxdb_fails(
        "500 beyond the retry budget",
        shim_fault("status", status=500, count=3),
        clear_queued_faults,
        "HTTP 500",
        "failed after 3 attempt(s)",
        writes=3,
    ),
    influxdb_recovers(
        "503 with Retry-After",
        shim_fault("status", status=503, retry_after=int(INFLUXDB_RETRY_AFTER_SECONDS)),
        verify=retry_came_after_retry_after,
    ),
    influxdb_recovers(
        "timeout: write slower than the client timeout",
        shim_fault("delay", delay_seconds=SLOW_SECONDS),
        influxdb={"write_timeout_seconds": SHORT_TIMEOUT_SECONDS},
    ),
    influxdb_recovers("connection reset", shim_fault("reset")),
    influxdb_recovers("reply lost after the write was stored", shim_fault("lost_reply")),
    FaultCase(
        "partial write (InfluxDB 3 body, line 2 rejected)",
        "InfluxDB",
        "partial",
        shim_fault("partial_write", line_number=2),
        ("partial write rejected 1 line(s), the other lines of the request were stored", "line 2"),
        survivors=without_line(2),
    ),
    influxdb_fails(
        "field type conflict (real server)",
        integer_moer_in_shard(timedelta(hours=1)),
        measurement_dropped,
        "HTTP 400",
        "field type conflict",
    ),
    FaultCase(
        "field type conflict in one of two shards (real partial write)",
        "InfluxDB",
        "partial",
        integer_moer_in_shard(-timedelta(hours=12)),
        ("HTTP 400", "field type conflict", "dropped=3"),
        clear=measurement_dropped,
        first=SHARD_BOUNDARY - QUARTER,
        intervals=2,
        survivors=from_shard_boundary,
    ),
]


def _dated(cases: list[FaultCase]) -> list[FaultCase]:
    """A day of its own for every case without a fixed start, so partitions never overlap on the shared instance."""
    return [replace(case, first=case.first or FIRST_DAY + timedelta(days=index)) for index, case in enumerate(cases)]


CASES = _dated(_CASES)


@pytest.fixture(params=CASES, ids=[case.id for case in CASES])
def scene(
    request: pytest.FixtureRequest,
    shared_simulator: SimulatorServer,
    shared_instance: dg.DagsterInstance,
    influxdb_shim: InfluxDBShim,
    influxdb_server: InfluxDBServer,
    influxdb_database: str,
) -> Scene:
    case: FaultCase = request.param
    assert case.first is not None, "CASES are dated"
    shared_simulator.state.clear_faults()
    shared_simulator.state.reset_stats()
    return Scene(case, case.first, shared_simulator, influxdb_shim, influxdb_server, influxdb_database, shared_instance)


def test_fault(scene: Scene) -> None:
    case = scene.case
    case.arrange(scene)
    started = time.monotonic()
    result = scene.materialize(faulty=True)
    seconds = time.monotonic() - started
    stored = scene.stored()
    outcome = observed(scene, result, stored)
    message = report(scene, result, outcome)

    assert outcome == case.outcome, message
    assert_calls(scene)
    assert seconds >= case.min_seconds
    if result.success:
        assert scene.materialized() == scene.partition_keys()
    else:
        assert_failure_names_everything(scene, result, message)
        assert scene.materialized() == scene.partition_keys(scene.written_regions())
        assert len(scene.written_regions()) == (len(case.regions) - 1 if outcome == "isolated" else 0)
    assert stored == expected_after_fault(scene)
    if case.verify is not None:
        case.verify(scene, result)

    assert_recovers_after_clearing(scene)
