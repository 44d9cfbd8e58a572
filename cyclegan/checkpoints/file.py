"""Saving and loading the training state: one function writes it, one reads it.

Files are written atomically (temporary file in the same folder, fsync, rename), so a crash or a
kill mid-save leaves the previous checkpoint intact, and read with `weights_only=True`, so loading a
file never runs pickled code: everything inside is tensors, numbers, strings, lists and dicts.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import random
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cyclegan.files import DiskFullError, atomic_write, atomic_write_bytes

FORMAT_VERSION = 2  # 2: the record of what trained it (checkpoints.record)
LAST = "last.pt"
BEST = "best.pt"

log = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A file that is not a checkpoint of this project, or not one this model can load."""


class CheckpointWriteError(OSError):
    """Writing a checkpoint failed (full disk, permissions); the previous one is untouched."""


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Atomically write `state` (plus the format version) to `path`.

    Serialised in memory first: its size is then known, and a disk without room for it is one
    line (`DiskFullError`, naming the size and the free space) before anything is written.
    """
    path = Path(path)
    buffer = io.BytesIO()
    torch.save({"format_version": FORMAT_VERSION, **state}, buffer)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return atomic_write_bytes(path, buffer.getbuffer())
    except DiskFullError as exc:
        raise DiskFullError(path, exc.needed, "continue with resume=auto") from None
    except OSError as exc:
        raise CheckpointWriteError(
            f"could not write checkpoint '{path}' ({exc.strerror or exc}); the previous checkpoint "
            "is intact: free disk space (or fix permissions) and continue with resume=auto"
        ) from exc


def link_or_copy(source: Path, target: Path) -> None:
    """Make `target` an atomic alias of `source` (hard link, or a copy where links are refused)."""

    def write(tmp: Path) -> None:
        tmp.unlink()  # os.link needs a free name
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)

    atomic_write(target, write, fsync=False)  # a link or a copy of an fsynced file


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`, refusing anything else with a clear message."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' not found; check the path given to resume=")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, foreign pickle, ...
        raise CheckpointError(
            f"'{path}' is not a readable checkpoint ({type(exc).__name__}); it may be truncated "
            "or from another program: use another file, or resume from an earlier checkpoint"
        ) from exc
    if not isinstance(state, dict) or "format_version" not in state or "model" not in state:
        raise CheckpointError(
            f"'{path}' is not a training checkpoint of this project (no format_version/model "
            "entries); to use other weights see `python -m cyclegan.translate`"
        )
    if state["format_version"] > FORMAT_VERSION:
        raise CheckpointError(
            f"'{path}' has format {state['format_version']}, newer than this code's "
            f"{FORMAT_VERSION}; upgrade cyclegan"
        )
    return state


def find_resume_checkpoint(resume: str | None, checkpoint_dir: Path) -> Path | None:
    """`resume=auto`: the run's last.pt if it exists; `resume=PATH`: that file; null: none."""
    if resume is None or resume in ("", "none", "null", "false"):
        return None
    if resume == "auto":
        last = checkpoint_dir / LAST
        return last if last.is_file() else None
    path = Path(resume)
    if not path.is_file():
        raise CheckpointError(
            f"resume={resume}: no such file; give a checkpoint path or resume=auto"
        )
    return path


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, Mapping):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


def config_differences(
    saved: Mapping[str, Any], current: Mapping[str, Any]
) -> dict[str, tuple[Any, Any]]:
    """Keys whose values differ between two resolved configs: {key: (saved, current)}."""
    a, b = _flatten(saved), _flatten(current)
    return {k: (a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)}


# Config sections whose change makes a checkpoint unusable (the tensors would not fit, or another
# algorithm's state is in the file).
SHAPE_KEYS = ("model.", "method._target_")


def check_resume_config(
    saved: Mapping[str, Any], current: Mapping[str, Any], path: Path
) -> dict[str, tuple[Any, Any]]:
    """Refuse a resume whose model (or method) differs; return (and log) the other, allowed
    differences. A key the saved config does not have is an option added since the file was
    written, whose default reproduces the old behaviour: it is not a difference."""
    diffs = config_differences(saved, current)
    ignored = ("paths.", "resume", "logger.")
    flat_saved = _flatten(saved)
    # The model's class path is not its shape (modules move between releases); its keys are.
    shape = {
        k: v
        for k, v in diffs.items()
        if k.startswith(SHAPE_KEYS) and k in flat_saved and k != "model._target_"
    }
    if shape:
        listed = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in shape.items())
        raise CheckpointError(
            f"cannot resume from '{path}': the model differs ({listed}); use the checkpoint's model "
            "settings or start a new run"
        )
    allowed = {k: v for k, v in diffs.items() if not k.startswith(ignored)}
    for key, (a, b) in allowed.items():
        log.info("resuming with a changed setting: %s: %r -> %r", key, a, b)
    return allowed


def rng_state() -> dict[str, Any]:
    """Every global RNG's state as tensors and primitives (weights_only-loadable)."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": version, "state": list(internal), "gauss": gauss},
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            npy["keys"].numpy().astype(np.uint32),
            npy["pos"],
            npy["has_gauss"],
            npy["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        with contextlib.suppress(RuntimeError):  # a different GPU count: keep the fresh states
            torch.cuda.set_rng_state_all(state["cuda"])


def prune_checkpoints(checkpoint_dir: Path, keep_last: int) -> None:
    """Delete numbered checkpoints beyond the newest `keep_last` (last.pt/best.pt stay)."""
    numbered = sorted(checkpoint_dir.glob("step_*.pt"))
    for old in numbered[: max(0, len(numbered) - keep_last)]:
        old.unlink(missing_ok=True)
