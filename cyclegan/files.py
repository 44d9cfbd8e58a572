"""Writing files so that a crash, a kill or a full disk never leaves a half-written one.

Every file the project writes for a user (checkpoints, exports, translated images, summaries,
JSON reports) goes through `atomic_write`: the content is written to a temporary file in the same
folder, flushed to disk, then renamed over the target, which on one file system is atomic. A
reader sees the old file or the new one, never a mix.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

TEMP_SUFFIX = ".tmp"


def temporary_path(path: Path) -> Path:
    """A fresh, unique temporary file next to `path` (`.NAME.XXXX.tmp`), created empty."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    os.close(fd)
    return Path(tmp)


def atomic_write(path: str | Path, write: Callable[[Path], object], fsync: bool = True) -> Path:
    """`write(tmp)`, flush it to disk, then rename it onto `path`; on any error `path` is untouched.

    The new file gets the usual permissions of a file a user saves (0666 less the umask): some
    writers (safetensors, mkstemp) create files as 0600.
    """
    path = Path(path)
    tmp = temporary_path(path)
    umask = os.umask(0)
    os.umask(umask)
    try:
        write(tmp)
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def remove_stale_temporaries(folder: Path, pattern: str = f".*{TEMP_SUFFIX}") -> list[Path]:
    """Delete temporary files an interrupted write (kill -9) left in `folder`; returns them.

    Only for folders one process writes (a run's own checkpoints), at a time it is not writing.
    """
    removed = []
    if folder.is_dir():
        for stale in folder.glob(pattern):
            stale.unlink(missing_ok=True)
            removed.append(stale)
    return removed


def jsonable(value: Any) -> Any:
    """A value JSON can hold: tensors as numbers, NaN/inf as strings (kept visible, not dropped)."""
    if isinstance(value, torch.Tensor):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def write_json(path: str | Path, data: dict[str, Any]) -> Path:
    """Write a flat dict as indented JSON, atomically, so a reader (sweep.py) never sees half."""
    text = json.dumps({k: jsonable(v) for k, v in data.items()}, indent=2) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text))
