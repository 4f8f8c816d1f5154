"""The line-protocol file sink refusing a write: the sink's own error, naming the file, and a run that says so."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from carbon_pipeline.run_outcomes import FailedRegion, FailureKind, run_outcome
from carbon_pipeline.sinks.base import SinkWriteError
from carbon_pipeline.sinks.files import LineProtocolFileSink
from carbon_pipeline.sinks.line_protocol import series_prefix
from carbon_pipeline.watttime.simulator import SimulatorServer
from carbon_pipeline_tests.support.pipeline_harness import ASSET, PARTITIONS, materialize, watttime_resource

REGION = "CAISO_NORTH"
DAY = datetime(2025, 1, 1, tzinfo=UTC)
QUARTER = timedelta(minutes=15)
LINE = f"carbon_intensity,region={REGION},source=simulator moer_lbs_per_mwh=900.5 {int(DAY.timestamp())}"


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


def test_a_file_where_the_folder_should_be_is_a_sink_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "carbon_intensity").write_text("in the way")
    with pytest.raises(SinkWriteError, match=re.escape(f"at {tmp_path / 'carbon_intensity'}: File exists")) as raised:
        LineProtocolFileSink(directory=str(tmp_path)).write_lines([LINE])
    assert not raised.value.retryable  # a person must move the file first


def test_a_folder_where_a_day_file_should_be_is_a_sink_error_naming_it(tmp_path: Path) -> None:
    day_file = tmp_path / "carbon_intensity" / "2025-01-01.lp"
    day_file.mkdir(parents=True)
    with pytest.raises(SinkWriteError, match=re.escape(f"at {day_file}: Is a directory")) as raised:
        LineProtocolFileSink(directory=str(tmp_path)).write_lines([LINE])
    assert not raised.value.retryable


def test_a_refused_file_write_fails_the_run_as_a_sink_failure_and_materializes_nothing(
    instance: dg.DagsterInstance, simulator: SimulatorServer, tmp_path: Path
) -> None:
    (tmp_path / "carbon_intensity").write_text("in the way")
    resources = {
        "watttime": watttime_resource(simulator.base_url),
        "point_sink": LineProtocolFileSink(directory=str(tmp_path)),
    }
    result = materialize(resources, REGION, DAY, DAY + QUARTER, instance=instance)
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    assert run is not None
    outcome = run_outcome(instance, run, datetime.now(UTC), ASSET.key, PARTITIONS)
    assert outcome is not None
    assert outcome.failure is FailureKind.INFLUXDB_WRITE and not outcome.retryable
    assert outcome.failed == {REGION: FailedRegion(FailureKind.INFLUXDB_WRITE, retryable=False)}
    message = outcome.message_for(REGION)
    assert "interval 2025-01-01T00:00Z..2025-01-01T00:30Z" in message
    assert f"cannot write line-protocol file(s) at {tmp_path / 'carbon_intensity'}: File exists" in message
    assert instance.get_materialized_partitions(ASSET.key) == set()


def test_stored_moer_reads_back_one_series_in_a_range_across_day_files(tmp_path: Path) -> None:
    sink = LineProtocolFileSink(directory=str(tmp_path))
    caiso, other = series_prefix(REGION, "co2_moer", "simulator"), series_prefix("PJM_DC", "co2_moer", "simulator")
    midnight = int((DAY + timedelta(days=1)).timestamp())
    times = (midnight - 600, midnight - 300, midnight, midnight + 300)
    sink.write_lines(
        [f'{caiso} moer_lbs_per_mwh={900.5 + index},model_date="a,b" {time}' for index, time in enumerate(times)]
    )
    sink.write_lines([f"{other} moer_lbs_per_mwh=1.0 {time}" for time in times])

    stored = sink.stored_moer(
        REGION, "co2_moer", "simulator", datetime.fromtimestamp(times[1], UTC), datetime.fromtimestamp(times[3], UTC)
    )

    assert stored == {times[1]: 901.5, times[2]: 902.5}
