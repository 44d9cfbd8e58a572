"""How a training job ends when it fails: one line and an exit status a scheduler can act on.

2: the user's input (config, data, files, disk): fix it and rerun. 1: a non-finite loss (the last
checkpoint is intact). 3: pre-empted by a signal after saving a checkpoint: rerun with resume=auto
(e.g. after a SLURM requeue). In a multirun the error itself is raised instead, so the launcher
marks that job failed and still runs the others; a job of a multirun on SLURM (one process per job)
still leaves with the status, after submitit has handed the failure to the sweep, so that sacct
shows it FAILED rather than COMPLETED.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from cyclegan.checkpoints.file import CheckpointError, CheckpointWriteError
from cyclegan.data.folder import DatasetNotFoundError, UnreadableImageError
from cyclegan.errors import ConfigError
from cyclegan.files import DiskFullError, free_bytes, is_disk_full

log = logging.getLogger("cyclegan.training.builder")

EXIT_USER_ERROR = 2
EXIT_NON_FINITE = 1
EXIT_PREEMPTED = 3


class OutputDirError(OSError):
    """The run directory cannot be created or written."""


USER_ERRORS: tuple[type[Exception], ...] = (
    ConfigError,
    DatasetNotFoundError,
    UnreadableImageError,
    CheckpointError,
    CheckpointWriteError,
    DiskFullError,
    OutputDirError,
    FileExistsError,
)


@contextlib.contextmanager
def exit_on_failure() -> Iterator[None]:
    """Turn the failures a user can act on into one logged line and an exit status."""
    from cyclegan.training.loop import NonFiniteLossError
    from cyclegan.training.signals import Preempted

    try:
        yield
    except USER_ERRORS as exc:
        log.error("%s", exc)
        raise _stop(exc, EXIT_USER_ERROR) from None
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        line = disk_full_line(exc)
        log.error("%s", line)
        raise _stop(DiskFullError(Path(exc.filename or "."), None), EXIT_USER_ERROR) from None
    except NonFiniteLossError as exc:
        log.error("%s", exc)
        raise _stop(exc, EXIT_NON_FINITE) from None
    except Preempted as exc:
        log.warning("%s", exc)
        exc.hand_over()  # e.g. submitit's requeue on SIGUSR2, now that the checkpoint is saved
        raise SystemExit(EXIT_PREEMPTED) from None


def _stop(exc: Exception, code: int) -> BaseException:
    """SystemExit(code) for a single run; in a multirun the error itself (an exit would end the
    whole sweep)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    in_multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    if not in_multirun:
        return SystemExit(code)
    if os.environ.get("SUBMITIT_EXECUTOR") == "slurm":
        # Hydra's launcher turns the error into the job's result, which submitit writes for the
        # sweep and then ends the process with 0; the status is given at exit, after that.
        atexit.register(_exit_with, code)
    return exc


def _exit_with(code: int) -> None:
    """End the process with `code` (atexit's handlers cannot set the status otherwise); the
    handlers registered before this one are skipped, so the logs are flushed here."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def disk_full_line(exc: OSError) -> str:
    """A full disk met by a write that does not check first (a log line, a sample grid)."""
    where = Path(exc.filename) if exc.filename else Path.cwd()
    folder = where.parent if not where.is_dir() else where
    return (
        f"the disk is full: could not write '{where}' ({free_bytes(folder) / 1024**2:.1f} MB free "
        "there); free some space (checkpoints already written are intact) and continue with "
        "resume=auto"
    )
