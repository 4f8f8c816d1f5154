"""The Dockerfile parsed, its build context, and the image laid out: shared by the rule checks and the image's."""

from __future__ import annotations

import pytest

from carbon_pipeline_tests.support.dockerfile_model import DOCKERIGNORE, DockerIgnore, Stage, read_stages
from carbon_pipeline_tests.support.image_layout import Image, lay_out_image


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return read_stages()


@pytest.fixture(scope="module")
def dockerignore() -> DockerIgnore:
    return DockerIgnore(DOCKERIGNORE.read_text())


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


@pytest.fixture(scope="module")
def image(stages: list[Stage], dockerignore: DockerIgnore, tmp_path_factory: pytest.TempPathFactory) -> Image:
    return lay_out_image(stages, dockerignore, tmp_path_factory.mktemp("image"))
