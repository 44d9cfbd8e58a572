"""Errors caused by the user's input, shared by the library's layers (no imports of its own)."""

from __future__ import annotations


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key and the fix."""
