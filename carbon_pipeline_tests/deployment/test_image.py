"""The production image laid out for real (``support/image_layout.py``): what it installs, and its CMD and HEALTHCHECK.

The installed package is loaded by Dagster as the image loads it, and the image's CMD passes its
HEALTHCHECK, which must fail while the code location cannot load its settings.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from carbon_pipeline_tests.support.dockerfile_model import CONSTRAINTS, PG_VARIABLES, Stage
from carbon_pipeline_tests.support.image_layout import DAGSTER_TIMEOUT_SECONDS, Image, clean_environment
from carbon_pipeline_tests.support.pipeline_harness import REPO
from carbon_pipeline_tests.support.postgres_server import PostgresServer
from carbon_pipeline_tests.support.processes import ServerProcess, free_loopback_port


def _installed(image: Image) -> dict[str, str]:
    listing = image.run([str(image.venv / "bin" / "python"), "-m", "pip", "list", "--format=json"], clean_environment())
    return {_normalized(item["name"]): item["version"] for item in json.loads(listing)}


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return _normalized(match.group())


@pytest.mark.slow
def test_installed_package_loads_its_definitions_without_the_repository(
    image: Image, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = tmp_path_factory.mktemp("local_home")
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    env = clean_environment(PATH=image.env["PATH"], DAGSTER_DEPLOYMENT="local", DAGSTER_HOME=str(home))
    location = image.run(["python", "-c", "import carbon_pipeline; print(carbon_pipeline.__file__)"], env)
    assert Path(location.strip()).is_relative_to(image.venv), "imported from the virtualenv, not the working tree"
    image.run(["dagster", "definitions", "validate", "-m", "carbon_pipeline.definitions"], env)
    usage = image.run(["carbon-pipeline", "--help"], env)
    assert "register" in usage and "simulator" in usage


def test_only_runtime_dependencies_are_installed_at_the_locked_versions(image: Image) -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    installed = _installed(image)
    test_only = {_requirement_name(requirement) for requirement in project["optional-dependencies"]["test"]}
    assert "pytest" in test_only
    assert not test_only & installed.keys(), "test dependencies are in the image"
    assert {_requirement_name(requirement) for requirement in project["dependencies"]} <= installed.keys()
    pins = {}
    for line in (REPO / CONSTRAINTS).read_text().splitlines():
        name, separator, version = line.partition("==")
        if separator:
            pins[_normalized(name)] = version.strip()
    unpinned = {
        name: version
        for name, version in installed.items()
        if name not in ("carbon-pipeline", "pip", "setuptools") and pins.get(name) != version
    }
    assert not unpinned, f"installed versions that constraints.txt does not pin: {unpinned}"


# The production settings the code location needs, and the Electricity Maps token an operator may set beside
# them; the secrets' values must never reach the probe's output.
PRODUCTION_SETTINGS = {
    "WATTTIME_USERNAME": "image-check",
    "WATTTIME_PASSWORD": "image-check-password",
    "INFLUXDB_HOST": "http://127.0.0.1:8181",
    "INFLUXDB_TOKEN": "image-check-token",
    "INFLUXDB_DATABASE": "carbon",
    "ELECTRICITYMAPS_API_TOKEN": "image-check-electricitymaps-token",
}
# What an operator forgets: the account name and the InfluxDB server, with the secrets set.
FORGOTTEN_SETTINGS = ("WATTTIME_USERNAME", "INFLUXDB_HOST", "INFLUXDB_DATABASE")
SECRET_SETTINGS = ("WATTTIME_PASSWORD", "INFLUXDB_TOKEN", "ELECTRICITYMAPS_API_TOKEN")


@dataclass(frozen=True)
class ServedImage:
    """The image's CMD and HEALTHCHECK commands with the EXPOSEd port swapped for a free one and the
    listening address for loopback, and the environment a container of the image gets."""

    image: Image
    serve: list[str]
    probe: list[str]
    liveness: list[str]
    env: dict[str, str]

    def start(self, settings: Mapping[str, str]) -> ServerProcess:
        """The CMD in the image's WORKDIR with ``settings`` as the only project settings."""
        env = self.env | dict(settings)
        return ServerProcess(
            "image code server",
            self.serve,
            self.image.root / "code_server.log",
            owner=self.image,
            cwd=self.image.workdir,
            env=env,
        )

    def check(self, argv: Sequence[str], settings: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        env = self.env | dict(settings)
        return subprocess.run(
            argv, cwd=self.image.workdir, env=env, capture_output=True, text=True, timeout=60, check=False
        )


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="module")
def served(image: Image, final: Stage, postgres: PostgresServer) -> ServedImage:
    """With the final stage's ENV (prod, PATH to the virtualenv, DAGSTER_HOME holding deploy/dagster.yaml)
    and a real PostgreSQL behind the DAGSTER_PG_* variables. ``liveness`` is Dagster's own probe, which
    only asks whether the server answers."""
    (exposed,) = final.all("EXPOSE")
    port = str(free_loopback_port())
    swaps = {exposed.value[0]: port, "0.0.0.0": "127.0.0.1"}
    (healthcheck,) = final.all("HEALTHCHECK")
    (cmd,) = final.all("CMD")
    connection = (postgres.host, str(postgres.port), postgres.user, postgres.password, postgres.database)
    env = clean_environment() | image.env | dict(zip(PG_VARIABLES.values(), connection, strict=True))
    return ServedImage(
        image=image,
        serve=_swapped(_argv(cmd.json, cmd.value), swaps),
        probe=_swapped(_argv(healthcheck.json, healthcheck.value[1:]), swaps),
        liveness=["dagster", "api", "grpc-health-check", "-p", port],
        env=env,
    )


@pytest.mark.slow
def test_image_command_serves_the_production_code_location_and_passes_the_healthcheck(
    image: Image, served: ServedImage
) -> None:
    """The instance opens from the installed packages, and the CMD, started in the image's WORKDIR with
    every production setting, answers the HEALTHCHECK's command."""
    opened = image.run(
        [
            "python",
            "-c",
            "import dagster as dg; instance = dg.DagsterInstance.get(); "
            "print(type(instance.event_log_storage).__name__, len(instance.get_runs()))",
        ],
        served.env | PRODUCTION_SETTINGS,
    )
    assert opened.split() == ["BatchingPostgresEventLogStorage", "0"]
    server = served.start(PRODUCTION_SETTINGS)
    try:
        server.wait_until_ready(
            lambda: served.check(served.probe, PRODUCTION_SETTINGS).returncode == 0,
            DAGSTER_TIMEOUT_SECONDS,
            "pass the healthcheck",
        )
    finally:
        server.stop()


@pytest.mark.slow
def test_healthcheck_fails_while_the_code_location_cannot_load_its_settings(served: ServedImage) -> None:
    """A code server started without some production settings keeps running and answers gRPC with its load
    error: Dagster's liveness probe passes it, the HEALTHCHECK must not. Its one-line reason names the
    missing variables and shows no secret's value."""
    settings = {name: value for name, value in PRODUCTION_SETTINGS.items() if name not in FORGOTTEN_SETTINGS}
    server = served.start(settings)
    try:
        server.wait_until_ready(
            lambda: served.check(served.liveness, settings).returncode == 0, DAGSTER_TIMEOUT_SECONDS, "answer gRPC"
        )
        probed = served.check(served.probe, settings)
        assert server.exit_code() is None, "the code server is still running, unconfigured"
    finally:
        server.stop()
    output = probed.stdout + probed.stderr
    assert probed.returncode != 0, output
    (line,) = output.splitlines()
    assert "failed to load" in line and all(name in line for name in FORGOTTEN_SETTINGS), line
    assert not [name for name in SECRET_SETTINGS if PRODUCTION_SETTINGS[name] in output]


def _argv(exec_form: bool, value: Sequence[str]) -> list[str]:
    """Exec form as written; shell form run by ``/bin/sh -c``, as Docker runs it."""
    return list(value) if exec_form else ["/bin/sh", "-c", " ".join(value)]


def _swapped(argv: list[str], swaps: Mapping[str, str]) -> list[str]:
    pattern = re.compile("|".join(rf"(?<![\w.]){re.escape(old)}(?![\w.])" for old in swaps))
    swapped = [pattern.sub(lambda match: swaps[match.group()], word) for word in argv]
    assert swapped != argv, f"{shlex.join(argv)} names neither the exposed port nor an address"
    return swapped
