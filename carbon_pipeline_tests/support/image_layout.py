"""The production image laid out for real below a temporary root, without a Docker engine.

Every stage's WORKDIR and COPY, and the build stage's RUN steps, so a fresh virtualenv is installed by
the Dockerfile's own pip command from the files its COPY instructions send.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import dockerfile

from carbon_pipeline_tests.support.dockerfile_model import (
    DockerIgnore,
    Stage,
    copy_destination,
    flag,
    is_pip_install,
    pip_installs,
    shell_words,
)
from carbon_pipeline_tests.support.pipeline_harness import REPO

# Wheels of every runtime dependency at its locked version and of the build backend, which `make wheelhouse`
# puts beside the virtualenv before the tests; the image's pip install finds everything there, no index.
WHEELHOUSE = Path(sys.prefix) / "wheelhouse"
INSTALL_TIMEOUT_SECONDS = 600
DAGSTER_TIMEOUT_SECONDS = 180
OUR_PREFIXES = ("DAGSTER_", "CARBON_", "WATTTIME_", "INFLUXDB_", "ALERT_", "PYTHON", "VIRTUAL_ENV")


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


def lay_out_image(stages: list[Stage], dockerignore: DockerIgnore, root: Path) -> Image:
    """Every stage's WORKDIR and context COPY in order, the build stage's RUN steps for real (``python`` is
    this interpreter), and the final stage's ``COPY --from`` of the virtualenv, which lands where it was built.

    Three changes to the pip command, none touching what gets installed: pip may use its cache, it skips
    byte-compiling (the image compiles at install; here it would only cost time), and it installs from
    WHEELHOUSE with no index, as nothing may be downloaded while the tests run.
    """
    assert (WHEELHOUSE / ".complete").is_file(), f"no wheels in {WHEELHOUSE}: run `make wheelhouse` first"
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
            target = root / copy_destination(stage, command, PurePosixPath(source).name).relative_to("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / source, target)
