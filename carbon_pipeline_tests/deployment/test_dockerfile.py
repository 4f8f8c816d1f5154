"""The production image, checked without a Docker engine.

The Dockerfile is read by Docker's own parser (PyPI ``dockerfile``) and checked rule by rule; the build
context is filtered by ``.dockerignore`` with Docker's matching rules. Then the image is laid out for real
below a temporary directory: every WORKDIR and COPY, and the build stage's RUN steps, so a fresh virtualenv
is installed by the Dockerfile's own pip command from the files its COPY instructions send. The installed
package is loaded by Dagster as the image loads it, and the image's CMD passes its HEALTHCHECK.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import dockerfile
import pytest
import yaml

from carbon_pipeline_tests.support.pipeline_harness import REPO
from carbon_pipeline_tests.support.postgres_server import PostgresServer
from carbon_pipeline_tests.support.processes import ServerProcess, free_loopback_port

DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
INSTANCE_FILE = "deploy/dagster.yaml"
CONSTRAINTS = "constraints.txt"
ROOT_USERS = {"root", "0"}
# Options of the image's pip install that change how it installs, never what.
PIP_QUIET_OPTIONS = {"--no-cache-dir", "--quiet", "-q", "--no-input", "--disable-pip-version-check", "--compile"}
# Names that hold credentials; none of them may reach an image, wherever it lies in the build context.
SECRET_NAMES = re.compile(r"^(\.env(\..+)?|.*\.(pem|key|p12|pfx)|\.netrc|\.pgpass|id_(rsa|ed25519)\b.*)$")
NOT_SECRET = {".env.example"}
# Planted where a developer's secrets typically lie: .dockerignore must keep every one out of the context.
PLANTED_SECRETS = (".env", ".env.prod", "deploy/.env", "carbon_pipeline/.env.local", "deploy/tls.key", "certs/ca.pem")
# What the image has no use for: tests, benchmarks, local state, tooling caches, build leftovers.
NOT_IN_CONTEXT = (
    "carbon_pipeline_tests/conftest.py",
    "benchmarks/data_path.py",
    "test-artifacts/ui/partitions.png",
    ".venv/bin/python",
    ".git/HEAD",
    ".dagster_home/dagster.yaml",
    ".pytest_cache/README.md",
    ".mypy_cache/3.11/cache.db",
    ".ruff_cache/CACHEDIR.TAG",
    "carbon_pipeline/__pycache__/cli.cpython-311.pyc",
    "carbon_pipeline.egg-info/PKG-INFO",
    ".coverage",
)
# Wheels of every runtime dependency at its locked version and of the build backend, which `make wheelhouse`
# puts beside the virtualenv before the tests; the image's pip install finds everything there, no index.
WHEELHOUSE = Path(sys.prefix) / "wheelhouse"
INSTALL_TIMEOUT_SECONDS = 600
DAGSTER_TIMEOUT_SECONDS = 180
# deploy/dagster.yaml's PostgreSQL connection, field by field, and the variable each comes from.
PG_VARIABLES = {
    "hostname": "DAGSTER_PG_HOST",
    "port": "DAGSTER_PG_PORT",
    "username": "DAGSTER_PG_USERNAME",
    "password": "DAGSTER_PG_PASSWORD",
    "db_name": "DAGSTER_PG_DB",
}
OUR_PREFIXES = ("DAGSTER_", "CARBON_", "WATTTIME_", "INFLUXDB_", "ALERT_", "PYTHON", "VIRTUAL_ENV")


# ##### The Dockerfile, as Docker's parser reads it


@dataclass(frozen=True)
class Stage:
    name: str | None
    base: str
    commands: tuple[dockerfile.Command, ...]

    def all(self, instruction: str) -> list[dockerfile.Command]:
        return [command for command in self.commands if command.cmd == instruction]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for command in self.all("ENV"):
            pairs = command.value
            values.update(zip(pairs[::2], pairs[1::2], strict=True))
        return values

    def workdir(self, before_line: int) -> PurePosixPath:
        workdir = PurePosixPath("/")
        for command in self.all("WORKDIR"):
            if command.start_line < before_line:
                workdir = workdir / command.value[0]
        return workdir


def read_stages(path: Path = DOCKERFILE) -> list[Stage]:
    stages: list[Stage] = []
    commands: list[dockerfile.Command] = []
    for command in dockerfile.parse_file(str(path)):
        if command.cmd == "FROM":
            commands = [command]
            value = command.value
            name = value[2] if len(value) == 3 and value[1].upper() == "AS" else None
            stages.append(Stage(name, value[0], ()))
        else:
            assert stages, f"{command.original!r} comes before any FROM"
            commands.append(command)
        stages[-1] = Stage(stages[-1].name, stages[-1].base, tuple(commands))
    return stages


def flag(command: dockerfile.Command, name: str) -> str | None:
    for item in command.flags:
        key, _, value = item.partition("=")
        if key == f"--{name}":
            return value
    return None


def context_copies(stage: Stage) -> list[dockerfile.Command]:
    """COPY/ADD instructions of ``stage`` that read the build context (not another stage or image)."""
    return [command for command in stage.commands if command.cmd in ("COPY", "ADD") and flag(command, "from") is None]


def shell_words(command: dockerfile.Command) -> list[str]:
    """A RUN's argv: the exec form as written, the shell form split as ``/bin/sh`` would split a simple command."""
    if command.json:
        return list(command.value)
    return shlex.split(command.value[0])


def is_pip_install(words: Sequence[str]) -> bool:
    """``pip install ...`` or ``python -m pip install ...``, whichever path the executable has."""
    if not words:
        return False
    pip = PurePosixPath(words[0]).name.startswith("pip") or list(words[1:3]) == ["-m", "pip"]
    return pip and "install" in words


def pip_installs(stage: Stage) -> list[list[str]]:
    return [words for words in map(shell_words, stage.all("RUN")) if is_pip_install(words)]


# ##### .dockerignore, matched as Docker matches it (moby's patternmatcher)


class DockerIgnore:
    """Docker's rules: patterns are cleaned paths relative to the context root; ``*`` and ``?`` stay within a
    path segment, ``**`` spans any number of them; a pattern excluding a directory excludes everything
    below it; ``!`` re-includes; the last pattern that matches a path decides."""

    def __init__(self, text: str) -> None:
        self.patterns: list[tuple[re.Pattern[str], bool]] = []
        self.exceptions: list[str] = []
        for line in text.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            pattern = line.strip()
            exclusion = pattern.startswith("!")
            if exclusion:
                pattern = pattern[1:].strip()
            pattern = os.path.normpath(pattern).lstrip("/") or "/"
            self.patterns.append((re.compile(_pattern_regex(pattern)), exclusion))
            if exclusion:
                self.exceptions.append(pattern)

    def excludes(self, path: str) -> bool:
        parts = PurePosixPath(path).parts
        parents = ["/".join(parts[: index + 1]) for index in range(len(parts) - 1)]
        excluded = False
        for regex, exclusion in self.patterns:
            if exclusion != excluded:
                continue
            if regex.match(path) or any(regex.match(parent) for parent in parents):
                excluded = not exclusion
        return excluded

    def context_files(self, root: Path) -> list[str]:
        """Every file of the build context that Docker sends to the builder, relative to ``root``."""
        sent = []
        for directory, subdirectories, names in os.walk(root):
            # Like Docker, skip an excluded directory unless an exception could bring back something below it.
            subdirectories[:] = [
                name
                for name in subdirectories
                if not self.excludes(relative := (Path(directory) / name).relative_to(root).as_posix())
                or any(exception.startswith((f"{relative}/", "*")) for exception in self.exceptions)
            ]
            for name in names:
                relative = (Path(directory) / name).relative_to(root).as_posix()
                if not self.excludes(relative):
                    sent.append(relative)
        return sorted(sent)


def _pattern_regex(pattern: str) -> str:
    regex, index = "^", 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**", index):
            index += 2
            if pattern.startswith("/", index):
                index += 1
            regex += ".*" if index == len(pattern) else "(.*/)?"
            continue
        if char == "*":
            regex += "[^/]*"
        elif char == "?":
            regex += "[^/]"
        elif char == "\\" and index + 1 < len(pattern):
            index += 1
            regex += re.escape(pattern[index])
        elif char in ".+()|{}$^":
            regex += "\\" + char
        else:
            regex += char
        index += 1
    return regex + "$"


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return read_stages()


@pytest.fixture(scope="module")
def dockerignore() -> DockerIgnore:
    return DockerIgnore(DOCKERIGNORE.read_text())


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


# ##### The rules, each read off the parsed Dockerfile


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        # Docker's documented examples (docs.docker.com, "Dockerignore files").
        ("*/temp*", "somedir/temporary.txt", True),
        ("*/temp*", "somedir/temp", True),
        ("*/temp*", "temp", False),
        ("*/*/temp*", "somedir/subdir/temporary.txt", True),
        ("temp?", "tempa", True),
        ("temp?", "temp/ab", False),
        ("**/*.go", "main.go", True),
        ("**/*.go", "a/b/c.go", True),
        ("*.md\n!README*.md\nREADME-secret.md", "notes.md", True),
        ("*.md\n!README*.md\nREADME-secret.md", "README.md", False),
        ("*.md\n!README*.md\nREADME-secret.md", "README-secret.md", True),
        # A directory pattern takes everything below it; a root pattern does not reach into subdirectories.
        (".venv/", ".venv/lib/site.py", True),
        ("/.env", "deploy/.env", False),
    ],
)
def test_dockerignore_matching_follows_docker(patterns: str, path: str, excluded: bool) -> None:
    assert DockerIgnore(patterns).excludes(path) is excluded


def test_image_is_built_in_stages_and_runs_from_a_copied_virtualenv(stages: list[Stage], final: Stage) -> None:
    assert len(stages) >= 2
    names = [stage.name for stage in stages[:-1]]
    assert all(names), "every stage before the last is named, so the last can copy from it"
    sources = {flag(command, "from") for command in final.all("COPY")} - {None}
    assert sources and sources <= set(names), f"the final stage copies from {sources}, stages are {names}"
    assert not pip_installs(final), "nothing is built or downloaded in the final stage"
    (venv,) = (command.value[0] for command in final.all("COPY") if flag(command, "from"))
    assert final.env()["PATH"].startswith(f"{venv}/bin:"), "the copied virtualenv's commands come first on PATH"


def test_final_stage_runs_as_a_user_other_than_root_from_before_its_command(final: Stage) -> None:
    users = final.all("USER")
    assert users, "the final stage never leaves root"
    last = users[-1]
    name = last.value[0].split(":")[0]
    assert name not in ROOT_USERS
    (command,) = final.all("CMD")
    assert last.start_line < command.start_line
    created = [shell_words(run) for run in final.all("RUN") if run.start_line < last.start_line]
    assert any(words[0] in ("useradd", "adduser") and words[-1] == name for words in created) or name.isdigit(), (
        f"user {name!r} is created in the final stage before USER"
    )


def test_healthcheck_runs_a_command(final: Stage) -> None:
    healthchecks = final.all("HEALTHCHECK")
    assert len(healthchecks) == 1, "the final stage has one HEALTHCHECK (a later one would replace it)"
    (healthcheck,) = healthchecks
    kind, *command = healthcheck.value
    assert kind == "CMD" and command and all(part.strip() for part in command)


def test_pip_installs_the_package_without_extras_pinned_by_the_lock_file(stages: list[Stage]) -> None:
    (build,) = [stage for stage in stages if pip_installs(stage)]
    (install,) = pip_installs(build)
    constraints, targets = _pip_install_arguments(install[install.index("install") + 1 :])
    assert constraints == [CONSTRAINTS]
    assert targets == ["."], "only the package itself: no [test] extra, no requirements file, no editable link"
    copied = {
        str(build.workdir(command.start_line) / name)
        for command in context_copies(build)
        if command.start_line < _line_of(build, install)
        for name in command.value[:-1]
    }
    workdir = build.workdir(_line_of(build, install))
    assert {str(workdir / CONSTRAINTS), str(workdir / "pyproject.toml")} <= copied


def test_every_copy_source_exists_in_the_context_and_nothing_secret_is_sent(
    stages: list[Stage], dockerignore: DockerIgnore
) -> None:
    context = dockerignore.context_files(REPO)
    sent: list[str] = []
    for stage in stages:
        for command in context_copies(stage):
            for source in command.value[:-1]:
                assert not any(char in source for char in "*?["), f"{command.original!r}: name the files"
                path = PurePosixPath(os.path.normpath(source)).as_posix()
                assert (REPO / path).exists(), f"{command.original!r}: {source} is not in the repository"
                assert not dockerignore.excludes(path), f"{command.original!r}: .dockerignore excludes {source}"
                files = [name for name in context if path == "." or name == path or name.startswith(f"{path}/")]
                assert files, f"{command.original!r}: nothing of {source} reaches the builder"
                sent.extend(files)
    secrets = [name for name in sent if SECRET_NAMES.match(PurePosixPath(name).name) and name not in NOT_SECRET]
    assert not secrets
    assert INSTANCE_FILE in sent


@pytest.mark.parametrize("path", PLANTED_SECRETS)
def test_dockerignore_keeps_secrets_out_wherever_they_lie(dockerignore: DockerIgnore, path: str) -> None:
    assert SECRET_NAMES.match(PurePosixPath(path).name)
    assert dockerignore.excludes(path)


@pytest.mark.parametrize("path", NOT_IN_CONTEXT)
def test_dockerignore_keeps_tests_benchmarks_and_local_state_out(dockerignore: DockerIgnore, path: str) -> None:
    assert dockerignore.excludes(path)


def test_production_instance_file_is_dagster_home_and_holds_no_connection_secret(final: Stage) -> None:
    home = PurePosixPath(final.env()["DAGSTER_HOME"])
    destinations = [
        _destination(final, command, PurePosixPath(INSTANCE_FILE).name)
        for command in context_copies(final)
        if INSTANCE_FILE in command.value[:-1]
    ]
    assert destinations == [home / "dagster.yaml"]
    instance = yaml.safe_load((REPO / INSTANCE_FILE).read_text())
    connection = instance["run_storage"]["config"]["postgres_db"]
    assert {key: connection[key] for key in PG_VARIABLES} == {
        key: {"env": variable} for key, variable in PG_VARIABLES.items()
    }
    for storage in ("schedule_storage", "event_log_storage"):
        assert instance[storage]["config"]["postgres_db"] == connection


def _pip_install_arguments(arguments: Sequence[str]) -> tuple[list[str], list[str]]:
    """The constraint files and the requirements of ``pip install``; any option outside PIP_QUIET_OPTIONS fails."""
    constraints: list[str] = []
    targets: list[str] = []
    words = iter(arguments)
    for word in words:
        if word in ("-c", "--constraint"):
            constraints.append(next(words))
        elif word.startswith("--constraint="):
            constraints.append(word.partition("=")[2])
        elif word.startswith("-"):
            assert word in PIP_QUIET_OPTIONS, f"pip install {word}: not an option that leaves the result alone"
        else:
            targets.append(word)
    return constraints, targets


def _line_of(stage: Stage, words: Sequence[str]) -> int:
    (line,) = [run.start_line for run in stage.all("RUN") if shell_words(run) == list(words)]
    return line


def _destination(stage: Stage, command: dockerfile.Command, name: str) -> PurePosixPath:
    """Where COPY puts a file called ``name``: into the destination when it is a directory, else at it."""
    sources, target = command.value[:-1], command.value[-1]
    destination = stage.workdir(command.start_line) / target
    if target.endswith("/") or len(sources) > 1:
        return destination / name
    return destination


# ##### The image, carried out: its WORKDIR, COPY and build RUN steps in a temporary root


@dataclass(frozen=True)
class Image:
    """The image's filesystem, as the Dockerfile's WORKDIR and COPY instructions and the build stage's RUN
    steps make it, below ``root``; the final stage's users and ownership (its RUN steps) are not applied."""

    root: Path
    venv: Path
    workdir: Path
    env: dict[str, str]

    def path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")

    def run(self, argv: Sequence[str], env: Mapping[str, str], timeout: float = DAGSTER_TIMEOUT_SECONDS) -> str:
        """Run a command in the image's working directory, where nothing of the repository is importable."""
        result = subprocess.run(
            argv, cwd=self.workdir, env=dict(env), capture_output=True, text=True, timeout=timeout, check=False
        )
        assert result.returncode == 0, f"{shlex.join(argv)} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment less the project's settings and Python's, with ``extra`` on top."""
    kept = {key: value for key, value in os.environ.items() if not key.startswith(OUR_PREFIXES)}
    return kept | extra


@pytest.fixture(scope="module")
def image(stages: list[Stage], dockerignore: DockerIgnore, tmp_path_factory: pytest.TempPathFactory) -> Image:
    """Every stage's WORKDIR and context COPY in order, the build stage's RUN steps for real (``python`` is
    this interpreter), and the final stage's ``COPY --from`` of the virtualenv, which lands where it was built.

    Three changes to the pip command, none touching what gets installed: pip may use its cache, it skips
    byte-compiling (the image compiles at install; here it would only cost time), and it installs from
    WHEELHOUSE with no index, as nothing may be downloaded while the tests run.
    """
    assert (WHEELHOUSE / ".complete").is_file(), f"no wheels in {WHEELHOUSE}: run `make wheelhouse` first"
    root = tmp_path_factory.mktemp("image")
    (build,) = [stage for stage in stages if pip_installs(stage)]
    final = stages[-1]
    (venv,) = {command.value[0] for command in final.all("COPY") if flag(command, "from") == build.name}
    assert {command.value[-1].rstrip("/") for command in final.all("COPY") if flag(command, "from")} == {venv}
    context = set(dockerignore.context_files(REPO))
    for stage in (build, final):
        for command in stage.commands[1:]:
            workdir = root / stage.workdir(command.start_line + 1).relative_to("/")
            workdir.mkdir(parents=True, exist_ok=True)
            if command.cmd == "COPY" and flag(command, "from") is None:
                _copy_from_context(command, stage, root, context)
            elif command.cmd == "RUN" and stage is build:
                words = [_in_root(word, root, venv) for word in shell_words(command)]
                if words[:3] == ["python", "-m", "venv"]:
                    words[0] = sys.executable
                env = clean_environment()
                if is_pip_install(words):
                    words = [word for word in words if word != "--no-cache-dir"] + ["--no-compile", "--quiet"]
                    env = clean_environment(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(WHEELHOUSE))
                result = subprocess.run(
                    words, cwd=workdir, env=env, capture_output=True, text=True,
                    timeout=INSTALL_TIMEOUT_SECONDS, check=False,
                )  # fmt: skip
                assert result.returncode == 0, f"{command.original!r} failed:\n{result.stdout}\n{result.stderr}"
            else:
                assert stage is final or command.cmd == "WORKDIR", f"{command.original!r}: not carried out here"
    image_env = {name: _rooted(value, root) for name, value in final.env().items()}
    workdir = root / final.workdir(final.all("CMD")[0].start_line).relative_to("/")
    return Image(root=root, venv=root / venv.lstrip("/"), workdir=workdir, env=image_env)


def _in_root(word: str, root: Path, venv: str) -> str:
    return str(root / word.lstrip("/")) if word == venv or word.startswith(f"{venv}/") else word


def _rooted(value: str, root: Path) -> str:
    """An ENV value with the image's paths moved below ``root`` and ``$PATH`` this process's PATH."""
    parts = [
        os.environ["PATH"] if part == "$PATH" else str(root / part.lstrip("/")) if part.startswith("/") else part
        for part in value.split(":")
    ]
    return ":".join(parts)


def _copy_from_context(command: dockerfile.Command, stage: Stage, root: Path, context: set[str]) -> None:
    for source in command.value[:-1]:
        if (REPO / source).is_dir():
            target = root / (stage.workdir(command.start_line) / command.value[-1]).relative_to("/")
            prefix = f"{PurePosixPath(os.path.normpath(source)).as_posix()}/"
            for file in sorted(path for path in context if path.startswith(prefix)):
                (target / file[len(prefix) :]).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / file, target / file[len(prefix) :])
        else:
            target = root / _destination(stage, command, PurePosixPath(source).name).relative_to("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / source, target)


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


# The production settings the code location needs; the secrets' values must never reach the probe's output.
PRODUCTION_SETTINGS = {
    "WATTTIME_USERNAME": "image-check",
    "WATTTIME_PASSWORD": "image-check-password",
    "INFLUXDB_HOST": "http://127.0.0.1:8181",
    "INFLUXDB_TOKEN": "image-check-token",
    "INFLUXDB_DATABASE": "carbon",
}
# What an operator forgets: the account name and the InfluxDB server, with the secrets set.
FORGOTTEN_SETTINGS = ("WATTTIME_USERNAME", "INFLUXDB_HOST", "INFLUXDB_DATABASE")
SECRET_SETTINGS = ("WATTTIME_PASSWORD", "INFLUXDB_TOKEN")


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
