"""An exponential moving average of generators' weights (`trainer.ema_decay`, `trainer.ema_warmup`).

After each optimizer step, every averaged parameter moves towards the trained one:

    theta_ema <- d * theta_ema + (1 - d) * theta,     d = decay
    d_n = min(decay, (1 + n) / (10 + n))              with warm-up, n = steps done before this one

The averaged generators are smoother than the last iterate of an adversarial game (Yazici et al.
2019; StyleGAN, uvcgan2), so evaluation, sample grids, best.pt and the inference tools use them.
Without the warm-up the average starts at the initial weights and, at decay 0.999, still holds
37% of them after 1000 steps; the ramp (TensorFlow's ExponentialMovingAverage with num_updates)
follows the weights closely early on and reaches the configured decay after about
9 / (1 - decay) steps (until then d_n: 0.92 after 100 steps, 0.989 after 800). Buffers (batch norm's running statistics) are copied, not averaged. Under DDP every rank
averages the same, already synchronised weights, so the copies are identical on every rank.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from torch import nn


class GeneratorEMA:
    """Averaged copies of named modules (the container's ``G_AB``, ``G_BA`` or ``G``)."""

    def __init__(self, modules: Mapping[str, nn.Module], decay: float, warmup: bool) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"trainer.ema_decay={decay}: use a value in (0, 1), e.g. 0.999")
        self.decay, self.warmup = float(decay), bool(warmup)
        self.sources = dict(modules)
        self.averaged = {name: _frozen_copy(module) for name, module in self.sources.items()}

    def decay_at(self, step: int) -> float:
        """The decay of the update after `step` steps (the warm-up ramp, if on)."""
        return min(self.decay, (1 + step) / (10 + step)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Average the sources' current weights in; `step`: steps done before this update."""
        # One foreach call per kind over every generator: the update runs after each step.
        avg_params, new_params, avg_buffers, new_buffers = [], [], [], []
        for name, source in self.sources.items():
            avg_params += self.averaged[name].parameters()
            new_params += source.parameters()
            avg_buffers += self.averaged[name].buffers()
            new_buffers += source.buffers()
        torch._foreach_lerp_(avg_params, new_params, 1.0 - self.decay_at(step))
        if avg_buffers:
            torch._foreach_copy_(avg_buffers, new_buffers)

    @torch.no_grad()
    def reset(self) -> None:
        """Start the average again from the sources' weights (a resume from a checkpoint that
        has none)."""
        for name, source in self.sources.items():
            self.averaged[name].load_state_dict(source.state_dict())

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged weights under the container's keys (``G_AB.model.1.weight``), as the
        checkpoint's ``ema`` entry: the inference tools read it like the ``model`` entry."""
        return {
            f"{name}.{key}": value
            for name, module in self.averaged.items()
            for key, value in module.state_dict().items()
        }

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Raises RuntimeError (from torch) when the saved weights do not fit."""
        for name, module in self.averaged.items():
            prefix = f"{name}."
            module.load_state_dict(
                {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            )


def _frozen_copy(module: nn.Module) -> nn.Module:
    """A copy that no optimizer, DDP or autograd sees: its weights change only by averaging."""
    twin = copy.deepcopy(module)
    twin.requires_grad_(False)
    return twin
