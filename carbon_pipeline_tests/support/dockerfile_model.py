"""The Dockerfile as Docker's parser reads it (PyPI ``dockerfile``), and ``.dockerignore`` as Docker matches it.

Shared by the checks of the Dockerfile's rules and by the image laid out for real below a temporary
directory.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import dockerfile

from carbon_pipeline_tests.support.pipeline_harness import REPO

DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
CONSTRAINTS = "constraints.txt"
# deploy/dagster.yaml's PostgreSQL connection, field by field, and the variable each comes from.
PG_VARIABLES = {
    "hostname": "DAGSTER_PG_HOST",
    "port": "DAGSTER_PG_PORT",
    "username": "DAGSTER_PG_USERNAME",
    "password": "DAGSTER_PG_PASSWORD",
    "db_name": "DAGSTER_PG_DB",
}


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


def copy_destination(stage: Stage, command: dockerfile.Command, name: str) -> PurePosixPath:
    """Where COPY puts a file called ``name``: into the destination when it is a directory, else at it."""
    sources, target = command.value[:-1], command.value[-1]
    destination = stage.workdir(command.start_line) / target
    if target.endswith("/") or len(sources) > 1:
        return destination / name
    return destination
