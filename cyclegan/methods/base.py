"""What the training loop needs of a training algorithm, and the parts every algorithm shares.

A method owns its networks (one `nn.Module` container, saved as the checkpoint's `model`, built by
the method from the `model` group's `NetworkSpec`), its loss (the `loss` group, one class per
method: `loss_type`), its own settings (the `method` group: the constructor's keyword arguments
beyond the builder's), its optimizers with one LR scheduler each, and whatever else it keeps
between steps (replay buffers, random generators). The loop calls, in this order:
`start(steps_per_epoch)`, then per batch `to_device(batch)`, `training_step(batch)` and
`after_step()`; it reads `translators()` for evaluation and sample grids, and `state_dict()` /
`rank_state()` for checkpoints. `record()` says what trained a checkpoint (method, networks,
translators), so the inference tools rebuild its generators without guessing.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import torch
from torch import nn

from cyclegan.errors import ConfigError
from cyclegan.parts.ema import GeneratorEMA
from cyclegan.parts.networks.spec import NetworkSpec
from cyclegan.parts.schedule import LRMultiplier
from cyclegan.runtime.activation_checkpointing import enable_activation_checkpointing
from cyclegan.runtime.device import Precision
from cyclegan.runtime.strategy import SingleProcess

log = logging.getLogger(__name__)

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
Batch = Mapping[str, torch.Tensor]

# The builder passes these to every method; the method group's keys are the other arguments.
BUILDER_ARGUMENTS = frozenset(
    {"networks", "loss", "optimizer", "lr_rule", "channels", "execution", "seed"}
)
OPTIONAL_FEATURES = ("compile", "cuda_graphs")  # execution features a method may not support


@dataclass(frozen=True)
class Execution:
    """How a method's steps run (the trainer group's keys): the same math in every setting."""

    device: torch.device
    precision: str
    channels_last: bool
    compile: bool
    compile_mode: str
    cuda_graphs: bool
    activation_checkpointing: bool
    strategy: SingleProcess

    @classmethod
    def plain(cls, device: torch.device | str = "cpu", **changes: Any) -> Execution:
        """fp32, eager, one process: for code that builds a method without the trainer group."""
        plain = cls(
            torch.device(device), "32", False, False, "default", False, False, SingleProcess()
        )
        return replace(plain, **changes)


def set_requires_grad(modules: Iterable[nn.Module], flag: bool) -> None:
    """Freeze (False) or unfreeze modules, e.g. the discriminators during the generator update."""
    for module in modules:
        for p in module.parameters():
            p.requires_grad_(flag)


class TrainingMethod(ABC):
    """Optimizers, per-step LR schedules, precision and state handling shared by all methods.

    Subclasses set `name`, `loss_type` and `features` (the optional execution features they
    support), build their network container and pass it here, call `add_optimizer` for each
    optimizer, and implement `training_step`, `translators` and (if they keep per-rank state)
    `rank_state`.
    """

    name: ClassVar[str]  # what checkpoints record (`method=` option family)
    loss_type: ClassVar[type[nn.Module]]  # the loss group's class this method takes
    features: ClassVar[frozenset[str]] = frozenset()  # of OPTIONAL_FEATURES
    directions: ClassVar[tuple[str, ...]]  # what translators() returns: "AB", "BA"
    loss_names: ClassVar[tuple[str, ...]]  # what training_step returns
    progress_keys: tuple[str, ...] = ("loss_G", "loss_D")  # shown on the progress bar

    def __init__(
        self,
        networks: nn.Module,
        spec: NetworkSpec,
        channels: tuple[int, int],
        optimizer: OptimizerFactory,
        lr_rule: LRMultiplier,
        execution: Execution,
    ) -> None:
        self.check_features(execution)
        if execution.activation_checkpointing:  # before any wrapping: DDP and compile see it
            enable_activation_checkpointing(networks)
        self.model = networks.to(execution.device)
        if execution.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.spec, self.channels, self.execution = spec, channels, execution
        self.device = execution.device
        self.memory_format = (
            torch.channels_last if execution.channels_last else torch.contiguous_format
        )
        self.precision = Precision(execution.precision, execution.device)
        self.scaler = self.precision.scaler
        self.make_optimizer = optimizer
        self.lr_rule = lr_rule
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, torch.optim.lr_scheduler.LambdaLR] = {}
        self.ema: GeneratorEMA | None = None  # `average_generators` turns it on

    @staticmethod
    def check_settings(
        settings: Mapping[str, Any],
        loss: Any,
        networks: NetworkSpec,
        channels: tuple[int, int],
        img_size: int | None,
    ) -> None:
        """The method's own rules beyond keys and types, before any work (one-line ConfigError);
        `cyclegan.methods.settings.check_method` calls it. None by default."""
        return None

    @classmethod
    def check_features(cls, execution: Any) -> None:
        """One line naming the method and the key for an execution feature it cannot use."""
        for feature in OPTIONAL_FEATURES:
            if getattr(execution, feature) and feature not in cls.features:
                raise ConfigError(
                    f"trainer.{feature}=true is not supported by method={cls.name}; set "
                    f"trainer.{feature}=false"
                )

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

    def average_generators(self, decay: float, warmup: bool) -> None:
        """Keep an exponential moving average of every translator (trainer.ema_decay > 0): what
        evaluation, samples, best.pt and the inference tools then use (cyclegan.parts.ema)."""
        modules = dict(self.model.named_children())
        chosen = {name: modules[name] for name in self.translator_modules().values()}
        self.ema = GeneratorEMA(chosen, decay, warmup)

    def translator_modules(self) -> dict[str, str]:
        """{direction: the container's module name}, e.g. {"AB": "G_AB", "BA": "G_BA"}."""
        names = {id(module): name for name, module in self.model.named_children()}
        return {direction: names[id(module)] for direction, module in self.translators().items()}

    def scored_translators(self) -> dict[str, nn.Module]:
        """The generators evaluation, sample grids and best.pt use: the averaged ones when
        trainer.ema_decay > 0, else the trained ones."""
        if self.ema is None:
            return self.translators()
        modules = self.translator_modules()
        return {direction: self.ema.averaged[modules[direction]] for direction in modules}

    @property
    def scored_weights(self) -> str:
        """Which weights `scored_translators` holds: "ema" or "raw" (summary's eval/weights)."""
        return "raw" if self.ema is None else "ema"

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

    @property
    def steps_done(self) -> int:
        """Optimizer steps completed: every scheduler steps once per step (`after_step`) and a
        resume restores it, so step-scheduled parts (lazy R1/R2) continue where they were."""
        return next(iter(self.schedulers.values())).last_epoch

    def learning_rate(self) -> float:
        """The rate the next step uses (of the first optimizer)."""
        first = next(iter(self.optimizers.values()))
        return first.param_groups[0]["lr"]

    def after_step(self) -> None:
        """Per step, after every optimizer step: the generators' average (if kept), then the LR
        schedules at fractional epochs (see cyclegan.parts.schedule)."""
        if self.ema is not None:
            self.ema.update(self.steps_done)
        for scheduler in self.schedulers.values():
            scheduler.step()

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        """The state all ranks share: networks, optimizers, schedulers, loss scaler, and the
        generators' average under the container's keys (``ema``, only when kept)."""
        state = {
            "model": self.model.state_dict(),
            "optimizers": {k: v.state_dict() for k, v in self.optimizers.items()},
            "schedulers": {k: v.state_dict() for k, v in self.schedulers.items()},
            "scaler": self.scaler.state_dict(),  # {} unless trainer.precision=16-mixed
            "method": self.record(),
        }
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        return state

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
        self._load_ema(state.get("ema"))

    def _load_ema(self, saved: Mapping[str, torch.Tensor] | None) -> None:
        """The saved average; from a checkpoint without one (EMA turned on at a resume) the
        average starts again from the loaded weights, with a log line."""
        if self.ema is None:
            return
        if saved is None:
            log.info("the checkpoint has no generator average: it starts from the loaded weights")
            self.ema.reset()
        else:
            self.ema.load_state_dict(saved)

    def record(self) -> dict[str, Any]:
        """What trained this model, as a checkpoint keeps it: the method, its networks, and each
        translator's module name and architecture (what translate/export/evaluate rebuild)."""
        names = self.translator_modules()
        a, b = self.channels
        io = {"AB": (a, b), "BA": (b, a)}
        return {
            "name": self.name,
            "target": f"{type(self).__module__}.{type(self).__qualname__}",
            "networks": self.spec.to_dict(),
            "channels": {"A": a, "B": b},
            "translators": {
                direction: {
                    "module": names[direction],
                    "generator": self.spec.generator_spec(*io[direction]).to_dict(),
                }
                for direction in names
            },
        }

    def rank_state(self) -> dict[str, Any]:
        """State that differs between DDP ranks: {"buffers": ..., "rng": {name: generator state}}."""
        return {"buffers": {}, "rng": {}}

    def load_rank_state(self, state: Mapping[str, Any]) -> None:
        """Restore what `rank_state` returned (nothing to restore here)."""
        return None
