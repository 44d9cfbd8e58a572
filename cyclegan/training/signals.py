"""Stopping a run cleanly on a cluster's pre-emption notice, and what the entry point does then."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class Preempted(Exception):
    """Training stopped on a signal after saving a checkpoint; `resume=auto` continues it.

    `previous_handler` is the handler the signal had before training (e.g. submitit's, which
    requeues the job on SIGUSR2); `hand_over()` runs it once the checkpoint is safe.
    """

    def __init__(
        self, signum: int, step: int, checkpoint: Path, previous_handler: Any = None
    ) -> None:
        super().__init__(
            f"stopped by signal {signal.Signals(signum).name} at step {step}; checkpoint saved to '{checkpoint}'; continue with resume=auto"
        )
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        self.previous_handler = previous_handler

    def hand_over(self) -> None:
        """Run the signal's earlier Python handler, if it had one (it may exit or requeue)."""
        if callable(self.previous_handler):
            self.previous_handler(self.signum, None)


# SIGTERM: pre-emption (SLURM, Kubernetes, torchrun passing its own on); SIGUSR1: a common
# pre-emption notice; SIGUSR2: submitit's time-out notice, after which it requeues the job.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)


class SignalFlag:
    signum: int | None = None
    previous: dict[int, Any]


@contextlib.contextmanager
def stop_on_signals(
    signals: tuple[int, ...] = STOP_SIGNALS,
) -> Iterator[SignalFlag]:
    """Turn SIGTERM/SIGUSR1/SIGUSR2 (a cluster's pre-emption notice) into a flag the loop checks
    after each step, so the step in flight completes and a consistent checkpoint is written. The
    handlers installed before (e.g. submitit's requeue) are kept in `previous` for `Preempted`."""
    flag = SignalFlag()
    flag.previous = {}
    if threading.current_thread() is not threading.main_thread():
        yield flag  # handlers can only be installed from the main thread
        return

    def handler(signum: int, frame: Any) -> None:
        log.warning(
            "received %s: finishing the current step, then saving a checkpoint",
            signal.Signals(signum).name,
        )
        flag.signum = signum

    previous = {s: signal.signal(s, handler) for s in signals}
    flag.previous = previous
    try:
        yield flag
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
