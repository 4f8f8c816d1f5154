"""How a bad setting is reported: one error type naming the variable, shared by every group of settings."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T", bound=str)


class ConfigurationError(ValueError):
    """A setting is missing or malformed; the message names the variable and what is expected."""


def one_of(variable: str, value: str, choices: tuple[T, ...], expected: str) -> T:
    """The choice equal to ``value``, typed as the choices are; else an error naming the variable."""
    for choice in choices:
        if value == choice:
            return choice
    raise ConfigurationError(f"{variable}={value!r}: expected {expected}.")
