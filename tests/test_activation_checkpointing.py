"""Activation checkpointing: the same gradients, fewer saved activations, unchanged state dicts."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch import nn

from cyclegan.parts.networks.patchgan import PyTorchGANDiscriminator
from cyclegan.parts.networks.resnet import Generator
from cyclegan.runtime.activation_checkpointing import (
    disable_activation_checkpointing,
    enable_activation_checkpointing,
    is_checkpointed,
)

from .conftest import build_networks


def grads_and_saved_bytes(generator: nn.Module, x: torch.Tensor) -> tuple[list, torch.Tensor, int]:
    """Parameter and input gradients of a fixed loss, and the bytes autograd kept for backward."""
    saved = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal saved
        saved += t.numel() * t.element_size()
        return t

    generator.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_(True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = (generator(x) * torch.linspace(-1, 1, x.numel()).view_as(x)).sum()
    loss.backward()
    return [p.grad.clone() for p in generator.parameters()], x.grad, saved


@pytest.mark.parametrize("upsampling", ["nearest", "transposed"])
def test_gradients_equal_those_without_and_less_is_kept(upsampling: str) -> None:
    torch.manual_seed(0)
    plain = Generator(ngf=8, n_residual_blocks=3, upsampling=upsampling)
    ckpt = copy.deepcopy(plain)
    assert enable_activation_checkpointing(ckpt) == 3
    x = torch.randn(2, 3, 16, 16)
    grads, x_grad, saved_plain = grads_and_saved_bytes(plain, x)
    grads_ckpt, x_grad_ckpt, saved_ckpt = grads_and_saved_bytes(ckpt, x)
    for g, h in zip(grads, grads_ckpt, strict=True):
        torch.testing.assert_close(h, g, rtol=0, atol=1e-6)
    torch.testing.assert_close(x_grad_ckpt, x_grad, rtol=0, atol=1e-6)
    assert torch.equal(ckpt(x), plain(x))
    # Each block keeps its input instead of ~7 activations of the same size.
    assert saved_ckpt < 0.6 * saved_plain


def test_state_dict_keys_and_values_are_untouched_and_switch_is_reversible() -> None:
    model = build_networks("resnet", ngf=8, ndf=8, n_residual_blocks=2)
    keys = list(model.state_dict())
    assert enable_activation_checkpointing(model) == 4  # two blocks in each generator
    assert enable_activation_checkpointing(model) == 4  # idempotent
    assert list(model.state_dict()) == keys
    blocks = [m for m in model.modules() if is_checkpointed(m)]
    assert len(blocks) == 4
    clone = copy.deepcopy(model)
    assert all(is_checkpointed(m) for m in clone.G_AB.model if hasattr(m, "block"))
    assert sum(is_checkpointed(m) for m in pickle.loads(pickle.dumps(model)).modules()) == 4
    assert disable_activation_checkpointing(model) == 4
    assert not any(is_checkpointed(m) for m in model.modules())


def test_no_grad_calls_skip_the_checkpoint_and_match() -> None:
    torch.manual_seed(1)
    g = Generator(ngf=8, n_residual_blocks=1)
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        before = g(x)
        enable_activation_checkpointing(g)
        assert torch.equal(g(x), before)


def test_a_model_without_blocks_is_refused() -> None:
    with pytest.raises(ValueError, match=r"trainer\.activation_checkpointing=false"):
        enable_activation_checkpointing(PyTorchGANDiscriminator(3, 8, "instance"))
