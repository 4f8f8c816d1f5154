"""The production Dockerfile's rules, checked without a Docker engine.

The Dockerfile is read by Docker's own parser (PyPI ``dockerfile``) and checked rule by rule; the build
context is filtered by ``.dockerignore`` with Docker's matching rules (``support/dockerfile_model.py``).
The image laid out for real is checked in ``test_image.py``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import PurePosixPath

import pytest
import yaml

from carbon_pipeline_tests.support.dockerfile_model import (
    CONSTRAINTS,
    PG_VARIABLES,
    DockerIgnore,
    Stage,
    context_copies,
    copy_destination,
    flag,
    pip_installs,
    shell_words,
)
from carbon_pipeline_tests.support.pipeline_harness import REPO

INSTANCE_FILE = "deploy/dagster.yaml"
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
        copy_destination(final, command, PurePosixPath(INSTANCE_FILE).name)
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
