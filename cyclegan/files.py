"""Writing files so that a crash, a kill or a full disk never leaves a half-written one.

Every file the project writes for a user (checkpoints, exports, translated images, summaries,
JSON reports) goes through `atomic_write`: the content is written to a temporary file in the same
folder, flushed to disk, then renamed over the target, which on one file system is atomic. A
reader sees the old file or the new one, never a mix.

A full disk is one line (`DiskFullError`) naming the file, the space it needed where known and the
space free, with no temporary file left behind: `atomic_write_bytes` checks the space before it
writes (checkpoints are serialised in memory first, so their size is known), and a write that
runs out of space anyway (another process filled the disk) is reported the same way.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

TEMP_SUFFIX = ".tmp"
MB = 1024 * 1024


class DiskFullError(OSError):
    """Not enough space to write a file; the previous version of it is untouched."""

    def __init__(self, path: Path, needed: int | None, then: str = "run again") -> None:
        free = free_bytes(path.parent)
        need = f"it needs {needed / MB:.1f} MB, " if needed is not None else ""
        super().__init__(
            errno.ENOSPC,
            f"not enough disk space to write '{path}': {need}{free / MB:.1f} MB are free there; "
            f"free some space (the previous file is intact) and {then}",
        )
        self.path, self.needed, self.free = path, needed, free

    def __str__(self) -> str:
        return str(self.strerror)


def free_bytes(folder: Path) -> int:
    """Bytes free for this user on the file system that holds `folder`."""
    return shutil.disk_usage(folder).free


def is_disk_full(exc: BaseException) -> bool:
    """An OSError of a full disk, or torch.save's RuntimeError when it ran out of space (its
    zip writer reports "unexpected pos", not the errno)."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return isinstance(exc, RuntimeError) and "unexpected pos" in str(exc)


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
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if is_disk_full(exc) and not isinstance(exc, DiskFullError):
            raise DiskFullError(path, None) from exc
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes | memoryview) -> Path:
    """`atomic_write` of bytes whose size is known: refused before anything is written when the
    file system has less free space than they need."""
    path = Path(path)
    if free_bytes(path.parent) < len(data):
        raise DiskFullError(path, len(data))

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            f.write(data)

    try:
        return atomic_write(path, write)
    except DiskFullError as exc:
        raise DiskFullError(path, len(data)) from exc.__cause__


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
