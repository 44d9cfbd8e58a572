"""Command-line keys whose spelling changed: one line naming the new spelling.

Hydra's own error for a key that moved (`Could not override 'logger.mode'. To append to your
config use +logger.mode=...`) spans lines and suggests adding the key, which would be silently
ignored; the entry points check the command line first and stop with the key to type instead.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

EXIT_RENAMED_KEY = 2

# The W&B logger's keys, typed as `logger.KEY` before each logger had a node of its own
# (`logger.wandb.KEY`), so that options combine: logger=[wandb,tensorboard].
_WANDB_KEYS = (
    "mode", "project", "entity", "name", "group", "job_type", "tags", "notes", "log_model",
)  # fmt: skip


def renamed_key_message(overrides: Iterable[str]) -> str | None:
    """One line for the first override in an old spelling (`logger.mode=online`), naming the
    new one (`logger.wandb.mode=online`); None when there is none."""
    for override in overrides:
        key, _, value = override.partition("=")
        parts = key.lstrip("+~").split(".")
        if len(parts) == 2 and parts[0] == "logger" and parts[1] in _WANDB_KEYS:
            return (
                f"{override}: each logger has its own keys now (so that "
                f"logger=[wandb,tensorboard] combines them); use logger.wandb.{parts[1]}={value}"
            )
    return None


def require_current_keys(overrides: Iterable[str]) -> None:
    """Exit with `renamed_key_message`'s line (status 2) if the command uses an old spelling."""
    message = renamed_key_message(overrides)
    if message is not None:
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_RENAMED_KEY)
