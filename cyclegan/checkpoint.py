"""Saving and loading the training state: one function writes it, one reads it.

Files are written atomically (temporary file in the same folder, fsync, rename), so a crash or a
kill mid-save leaves the previous checkpoint intact, and read with `weights_only=True`, so loading a
file never runs pickled code: everything inside is tensors, numbers, strings, lists and dicts.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A file that is not a checkpoint of this project, or not one this model can load."""


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Atomically write `state` (plus the format version) to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format_version": FORMAT_VERSION, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`, refusing anything else with a clear message."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint '{path}' not found; check the path")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, foreign pickle, ...
        raise CheckpointError(
            f"'{path}' is not a readable checkpoint ({type(exc).__name__}); it may be truncated or from another program"
        ) from exc
    if not isinstance(state, dict) or "format_version" not in state or "model" not in state:
        raise CheckpointError(
            f"'{path}' is not a checkpoint of this project (no format_version/model entries)"
        )
    if state["format_version"] > FORMAT_VERSION:
        raise CheckpointError(
            f"'{path}' has format {state['format_version']}, newer than this code's {FORMAT_VERSION}; upgrade cyclegan"
        )
    return state
