"""Learning-rate policies as multipliers of the initial rate.

`linear` is the seed's: constant for `decay_epoch` epochs, then a straight line that reaches zero
at `n_epochs`. The seed steps it once per epoch; the trainer steps it once per optimizer step at
fractional epochs (`steps_per_epoch` set), which gives the same values at every epoch boundary
and a smooth decay within epochs, so short runs of a few long epochs decay too.
"""

from __future__ import annotations

import math
from enum import StrEnum


class Policy(StrEnum):
    linear = "linear"
    constant = "constant"
    cosine = "cosine"


class LRMultiplier:
    """Callable step -> factor for `torch.optim.lr_scheduler.LambdaLR` (picklable, unlike a lambda).

    The argument counts epochs while `steps_per_epoch` is 1 (the seed's per-epoch stepping) and
    optimizer steps once the trainer sets `steps_per_epoch` to its epoch length.
    """

    def __init__(self, policy: str | Policy, n_epochs: int, decay_epoch: int | None) -> None:
        """`decay_epoch` is read by linear and cosine only (the constant schedule has none)."""
        if n_epochs < 1:
            raise ValueError(f"schedule.n_epochs must be >= 1, got {n_epochs}")
        if Policy(policy) is Policy.constant:
            decay_epoch = n_epochs  # never decays
        elif decay_epoch is None or not 0 <= decay_epoch < n_epochs:
            raise ValueError(
                f"schedule.decay_epoch must be in [0, n_epochs), got decay_epoch={decay_epoch} "
                f"with n_epochs={n_epochs}; lower decay_epoch or raise n_epochs"
            )
        # Stored as a plain str: LambdaLR checkpoints this object's __dict__ (weights_only-safe).
        self.policy = str(Policy(policy).value)
        self.n_epochs = n_epochs
        self.decay_epoch = decay_epoch
        self.steps_per_epoch = 1

    def __call__(self, step: int) -> float:
        epoch = step / self.steps_per_epoch
        if self.policy == Policy.constant or epoch < self.decay_epoch:
            return 1.0
        progress = min(1.0, (epoch - self.decay_epoch) / (self.n_epochs - self.decay_epoch))
        if self.policy == Policy.linear:
            return 1.0 - progress
        return 0.5 * (1.0 + math.cos(math.pi * progress))
