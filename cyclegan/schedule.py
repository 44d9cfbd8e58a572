"""Learning-rate policies as multipliers of the initial rate, stepped once per epoch.

`linear` is the seed's: constant for `decay_epoch` epochs, then a straight line that reaches zero
at `n_epochs` (so the last epoch still trains at a small, non-zero rate).
"""

from __future__ import annotations

import math
from enum import StrEnum


class Policy(StrEnum):
    linear = "linear"
    constant = "constant"
    cosine = "cosine"


class LRMultiplier:
    """Callable epoch -> factor for `torch.optim.lr_scheduler.LambdaLR` (picklable, unlike a lambda)."""

    def __init__(self, policy: str | Policy, n_epochs: int, decay_epoch: int) -> None:
        if n_epochs < 1:
            raise ValueError(f"schedule.n_epochs must be >= 1, got {n_epochs}")
        if not 0 <= decay_epoch < n_epochs:
            raise ValueError(
                f"schedule.decay_epoch must be in [0, n_epochs), got decay_epoch={decay_epoch} "
                f"with n_epochs={n_epochs}; lower decay_epoch or raise n_epochs"
            )
        # Stored as a plain str: LambdaLR checkpoints this object's __dict__ (weights_only-safe).
        self.policy = str(Policy(policy).value)
        self.n_epochs = n_epochs
        self.decay_epoch = decay_epoch

    def __call__(self, epoch: int) -> float:
        if self.policy == Policy.constant or epoch < self.decay_epoch:
            return 1.0
        progress = min(1.0, (epoch - self.decay_epoch) / (self.n_epochs - self.decay_epoch))
        if self.policy == Policy.linear:
            return 1.0 - progress
        return 0.5 * (1.0 + math.cos(math.pi * progress))
