"""Errors caused by the user's input, shared by the library's layers (no imports of its own)."""

from __future__ import annotations

from enum import Enum
from typing import TypeVar


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key and the fix."""


class SettingKeyError(ConfigError):
    """A key that does not belong to the chosen method or mode, or a metric no run reports: it
    changes what a whole grid means, so a sweep is refused for it (a bad value fails one job)."""


E = TypeVar("E", bound=Enum)


def parse_choice(kind: type[E], value: str | E, key: str) -> E:
    """`value` as a member of the enum `kind`; a one-line ValueError naming `key` and the
    choices otherwise (the one home of this message for every option with a fixed set)."""
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(str(m.value) for m in kind)
        raise ValueError(f"unknown {key} {value!r}; choose one of {choices}") from None
