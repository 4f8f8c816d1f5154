"""Tests of test classification: what makes a test integration or browser, and the guard on the others."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable

import pytest

from carbon_pipeline_tests.support.markers import BROWSER, INTEGRATION, UnmarkedProcessStart

SCANNED_TESTS = """
import subprocess
from subprocess import run

import pytest

from carbon_pipeline_tests.support.influxdb_server import InfluxDBServer
from carbon_pipeline_tests.support.outage_rig import outage_rig
from datetime import UTC, datetime

from carbon_pipeline.partitions import build_carbon_partitions


def start_the_cli():
    return subprocess.run(["carbon-pipeline", "--help"])


@pytest.fixture
def influxdb():
    with InfluxDBServer() as server:
        yield server


def test_pure_logic():
    assert build_carbon_partitions(("CAISO_NORTH",), datetime(2025, 1, 1, tzinfo=UTC))


def test_runs_a_subprocess():
    subprocess.run(["true"])


def test_runs_a_function_taken_from_subprocess():
    run(["true"])


def test_through_a_helper_of_its_module():
    start_the_cli()


def test_through_a_support_harness(simulator):
    with outage_rig(simulator):
        pass


def test_through_a_nested_function():
    def launch():
        return InfluxDBServer().start()

    launch()


def test_uses_a_fixture_that_starts_a_server(influxdb):
    pass


@pytest.mark.integration
def test_marked_by_hand():
    pass
"""


def marks_of_collected(pytester: pytest.Pytester) -> dict[str, set[str]]:
    """The marks of every test pytester's directory holds, classified as this suite classifies its own."""
    pytester.makeini("[pytest]\nmarkers =\n    integration\n    browser\n")
    items, _ = pytester.inline_genitems("-p", "carbon_pipeline_tests.support.markers")
    return {item.name: {mark.name for mark in item.iter_markers()} for item in items}


def test_tests_reaching_a_process_start_are_integration_and_pure_ones_are_not(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_scanned=SCANNED_TESTS)
    pytester.makeconftest("import pytest\n\n@pytest.fixture\ndef simulator():\n    return None\n")

    marks = marks_of_collected(pytester)

    integration = {name for name, names in marks.items() if INTEGRATION in names}
    assert set(marks) - integration == {"test_pure_logic"}


def test_tests_in_a_ui_directory_are_browser(pytester: pytest.Pytester) -> None:
    pytester.mkpydir("ui").joinpath("test_page.py").write_text("def test_page():\n    pass\n")
    pytester.makepyfile(test_elsewhere="def test_elsewhere():\n    pass\n")

    marks = marks_of_collected(pytester)

    assert marks == {"test_page": {BROWSER}, "test_elsewhere": set()}


@pytest.mark.parametrize(
    "start",
    [
        lambda: os.system("true"),
        lambda: os.posix_spawn(sys.executable, [sys.executable, "-c", "pass"], dict(os.environ)),
    ],
    ids=["os.system", "os.posix_spawn"],
)
def test_a_test_not_marked_integration_cannot_start_a_process(
    start: Callable[[], object], request: pytest.FixtureRequest
) -> None:
    """Neither start names anything the collection scan follows, so only the guard can stop them."""
    assert request.node.get_closest_marker(INTEGRATION) is None
    expected = f"{re.escape(request.node.nodeid)} starts a process .* not marked integration"
    with pytest.raises(UnmarkedProcessStart, match=expected):
        start()
