"""What the training loop needs of a training algorithm, and the parts every algorithm shares.

A method owns its networks (one `nn.Module` container, saved as the checkpoint's `model`), its
optimizers with one LR scheduler each, and whatever else it keeps between steps (replay buffers,
random generators). The loop calls, in this order: `start(steps_per_epoch)`, then per batch
`to_device(batch)`, `training_step(batch)` and `after_step()`; it reads `translators()` for
evaluation and sample grids, and `state_dict()` / `rank_state()` for checkpoints.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn

from cyclegan.parts.schedule import LRMultiplier
from cyclegan.runtime.device import Precision

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
Batch = Mapping[str, torch.Tensor]


def set_requires_grad(modules: Iterable[nn.Module], flag: bool) -> None:
    """Freeze (False) or unfreeze modules, e.g. the discriminators during the generator update."""
    for module in modules:
        for p in module.parameters():
            p.requires_grad_(flag)


class TrainingMethod(ABC):
    """Optimizers, per-step LR schedules, precision and state handling shared by all methods.

    Subclasses build their networks, call `add_optimizer` for each, and implement
    `training_step`, `translators` and (if they keep per-rank state) `rank_state`.
    """

    progress_keys: tuple[str, ...] = ("loss_G", "loss_D")  # shown on the progress bar

    def __init__(
        self,
        networks: nn.Module,
        make_optimizer: OptimizerFactory,
        lr_rule: LRMultiplier,
        device: torch.device,
        precision: str = "32",
        channels_last: bool = False,
    ) -> None:
        self.model = networks.to(device)
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.device = device
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.precision = Precision(precision, device)
        self.scaler = self.precision.scaler
        self.make_optimizer = make_optimizer
        self.lr_rule = lr_rule
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, torch.optim.lr_scheduler.LambdaLR] = {}

    def add_optimizer(self, name: str, parameters: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        """An optimizer (from the configured factory) with its LR schedule, saved under `name`."""
        optimizer = self.make_optimizer(parameters)
        self.optimizers[name] = optimizer
        self.schedulers[name] = torch.optim.lr_scheduler.LambdaLR(optimizer, self.lr_rule)
        return optimizer

    # ------------------------------------------------------------------ the algorithm

    @abstractmethod
    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One update of every network; returns named scalar losses (detached)."""

    @abstractmethod
    def translators(self) -> dict[str, nn.Module]:
        """The generators by direction ("AB", "BA"), for evaluation and sample grids."""

    def describe(self) -> str:
        """Sizes for the start-of-run log line."""
        millions = sum(p.numel() for p in self.model.parameters() if p.requires_grad) / 1e6
        return f"{millions:.2f}M params"

    def to_device(self, batch: Batch) -> dict[str, torch.Tensor]:
        return {
            k: v.to(self.device, non_blocking=True, memory_format=self.memory_format)
            for k, v in batch.items()
            if isinstance(v, torch.Tensor)
        }

    # ------------------------------------------------------------------ learning rate

    def start(self, steps_per_epoch: int) -> None:
        """Set each optimizer's rate from the current rule at its scheduler's step count (after a
        resume the rule may differ from the saved one, e.g. a longer schedule)."""
        self.lr_rule.steps_per_epoch = steps_per_epoch
        for sched in self.schedulers.values():
            for group, base in zip(sched.optimizer.param_groups, sched.base_lrs, strict=True):
                group["lr"] = base * self.lr_rule(sched.last_epoch)
            sched._last_lr = [group["lr"] for group in sched.optimizer.param_groups]

    def learning_rate(self) -> float:
        """The rate the next step uses (of the first optimizer)."""
        first = next(iter(self.optimizers.values()))
        return first.param_groups[0]["lr"]

    def after_step(self) -> None:
        """Per step, at fractional epochs (see cyclegan.parts.schedule)."""
        for scheduler in self.schedulers.values():
            scheduler.step()

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        """The state all ranks share: networks, optimizers, schedulers, loss scaler."""
        return {
            "model": self.model.state_dict(),
            "optimizers": {k: v.state_dict() for k, v in self.optimizers.items()},
            "schedulers": {k: v.state_dict() for k, v in self.schedulers.items()},
            "scaler": self.scaler.state_dict(),  # {} unless trainer.precision=16-mixed
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Raises RuntimeError (from torch) when the networks do not fit."""
        self.model.load_state_dict(state["model"])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        for name, sched in self.schedulers.items():
            # Keep the current LR rule (a changed schedule.n_epochs applies from here on): a None
            # entry tells LambdaLR not to overwrite the rule with the saved one.
            sched.load_state_dict({**state["schedulers"][name], "lr_lambdas": [None]})
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])

    def rank_state(self) -> dict[str, Any]:
        """State that differs between DDP ranks: {"buffers": ..., "rng": {name: generator state}}."""
        return {"buffers": {}, "rng": {}}

    def load_rank_state(self, state: Mapping[str, Any]) -> None:
        """Restore what `rank_state` returned (nothing to restore here)."""
        return None
