"""Activation checkpointing of residual blocks (``trainer.activation_checkpointing``).

Backpropagation needs the activations of the forward pass. A ResNet generator at 256 px keeps,
per residual block and image, the outputs of two reflection pads, two convs, two instance norms
and a ReLU at 4*ngf x 64 x 64 (about seven 4 MiB float tensors at ngf=64), for nine blocks in
each generator call: most of the step's activation memory. A checkpointed block
keeps only its input and recomputes the rest during the backward pass, trading one extra forward
of the block for that memory (Chen et al. 2016, "Training deep nets with sublinear memory cost").

The result is the same computation: the forward is deterministic (no dropout; instance norm has no
running statistics), so the recomputed activations, and hence the gradients, equal those kept.

Switching is done per module instance by overriding ``forward`` in the instance's ``__dict__``:
parameter names, state dicts and checkpoints do not change, so a model can be switched on or off
at any time (e.g. after loading weights) and its checkpoints stay interchangeable.
``torch.utils.checkpoint`` is used with ``use_reentrant=False``, the variant that works with
inputs that do not require grad, keyword arguments, autocast and DDP.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from cyclegan.parts.networks.resnet import ResidualBlock

__all__ = [
    "DEFAULT_BLOCK_TYPES",
    "disable_activation_checkpointing",
    "enable_activation_checkpointing",
    "is_checkpointed",
]

DEFAULT_BLOCK_TYPES: tuple[type[nn.Module], ...] = (ResidualBlock,)  # every ResNet generator's


def _checkpointed_forward(module: nn.Module, *args: torch.Tensor) -> torch.Tensor:
    forward = type(module).forward  # the class's own forward, not this override
    if not torch.is_grad_enabled():  # inference and no_grad calls: nothing to save anyway
        return forward(module, *args)
    return checkpoint(forward, module, *args, use_reentrant=False)


def is_checkpointed(module: nn.Module) -> bool:
    """True when ``module``'s forward has been switched to the checkpointed one."""
    forward = module.__dict__.get("forward")
    return isinstance(forward, functools.partial) and forward.func is _checkpointed_forward


def enable_activation_checkpointing(
    model: nn.Module, block_types: Iterable[type[nn.Module]] = DEFAULT_BLOCK_TYPES
) -> int:
    """Checkpoint every ``block_types`` module inside ``model`` (itself included); returns how
    many blocks are checkpointed. Calling it twice changes nothing. Raises if there is none, since
    asking for the memory saving and silently getting none would be worse."""
    types = tuple(block_types)
    blocks = [m for m in model.modules() if isinstance(m, types)]
    if not blocks:
        names = ", ".join(t.__name__ for t in types)
        raise ValueError(
            f"{type(model).__name__} has no {names} to checkpoint; set "
            "trainer.activation_checkpointing=false for this model"
        )
    for block in blocks:
        if not is_checkpointed(block):
            # A partial, not a bound method, so the module still pickles and deep-copies.
            block.forward = functools.partial(_checkpointed_forward, block)
    return len(blocks)


def disable_activation_checkpointing(model: nn.Module) -> int:
    """Undo :func:`enable_activation_checkpointing` everywhere inside ``model``; returns the count."""
    switched = [m for m in model.modules() if is_checkpointed(m)]
    for module in switched:
        del module.__dict__["forward"]
    return len(switched)
