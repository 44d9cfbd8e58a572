"""Features of a generator's encoder at chosen layer indices (CUT's ``nce_layers``), and their checks.

CUT computes its PatchNCE loss on intermediate features of the generator itself: layer ``i`` is the
output of module ``i`` of the generator's ``nn.Sequential`` (CUT's default ``0,4,8,12,16`` on its
ResNet generator: the padded input, the two downsampling convs before their norm, the outputs of
residual blocks 1 and 5). Everything here works on any generator whose layers are one
``nn.Sequential`` (CUT's, and our ``resnet``/``paper`` generators' ``.model``), so CUT can use them.

Departure from the reference: its ``encode_only`` pass returns the tensor a module produced, and a
following in-place ReLU then overwrites it, so a tap on a norm layer silently returns the ReLU
output. Here such a tap is cloned first, so layer ``i`` is always module ``i``'s output. CUT's
default layers are never followed by an in-place module, so they are unaffected.

Bad layers or patch counts are configuration errors (`NCEConfigError`, a ConfigError and so a ValueError): they are
raised by the checks below, before any training work.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call

from cyclegan.errors import ConfigError

CUT_NCE_LAYERS = (0, 4, 8, 12, 16)  # the reference's --nce_layers default (CUT's ResNet generator)

# The layers that tap the same places as CUT's 0,4,8,12,16 (padded input, the two downsampling convs
# before their norm, residual blocks 1 and 5) in each tappable generator (`model.generator`).
DEFAULT_NCE_LAYERS = {
    "cut": CUT_NCE_LAYERS,
    "resnet": (0, 4, 7, 10, 14),
    "paper": (0, 4, 7, 10, 14),
}


class NCEConfigError(ConfigError):
    """An NCE setting that cannot work with the generator or the images (nce_layers, num_patches...)."""


def check_nce_layers(model: nn.Sequential, layers: Sequence[int]) -> tuple[int, ...]:
    """The layers as a tuple, or a one-line error: non-empty, strictly increasing, inside the model.

    Strictly increasing because the encoder pass stops at the last layer and returns the features
    in module order.
    """
    layers = tuple(layers)
    last = len(model) - 1
    if not layers:
        raise NCEConfigError("nce_layers is empty; give at least one layer index, e.g. 0,4,8,12,16")
    if any(isinstance(i, bool) or not isinstance(i, int) for i in layers):
        raise NCEConfigError(f"nce_layers must be integers, got {list(layers)}")
    outside = [i for i in layers if not 0 <= i <= last]
    if outside:
        raise NCEConfigError(
            f"nce_layers {outside} outside the generator (layers 0..{last}); "
            f"pick indices in 0..{last} (CUT's generator: 0,4,8,12,16)"
        )
    if any(b <= a for a, b in itertools.pairwise(layers)):
        raise NCEConfigError(
            f"nce_layers must be strictly increasing, got {list(layers)}; sort them and drop repeats"
        )
    return layers


def tap_features(
    model: nn.Sequential, x: torch.Tensor, layers: Sequence[int]
) -> list[torch.Tensor]:
    """Outputs of modules `layers` of `model` on `x`, running only up to the last of them.

    `layers` must already be checked (`check_nce_layers`); this runs every step, so it checks nothing.
    """
    wanted = set(layers)
    stop = layers[-1]
    feats: list[torch.Tensor] = []
    h = x
    for i, module in enumerate(model):
        h = module(h)
        if i in wanted:
            # An in-place module next would overwrite this tensor (see the module docstring).
            nxt = model[i + 1] if i + 1 < len(model) else None
            feats.append(h.clone() if getattr(nxt, "inplace", False) else h)
            if i == stop:
                break
    return feats


def feature_channels(model: nn.Sequential, layers: Sequence[int], in_channels: int) -> list[int]:
    """Channel count at each layer, read from the modules (no forward pass).

    A module with `out_channels` (Conv2d, ConvTranspose2d) sets the count; every other module of
    these generators (padding, norm, activation, residual block, blur up/downsampling) keeps it.
    This is what the patch sampler's heads are sized from, eagerly, at construction.
    """
    counts: dict[int, int] = {}
    channels = in_channels
    for i, module in enumerate(model):
        channels = int(getattr(module, "out_channels", channels))
        counts[i] = channels
    return [counts[i] for i in layers]


def feature_shapes(
    model: nn.Sequential, layers: Sequence[int], in_channels: int, height: int, width: int
) -> list[tuple[int, int, int]]:
    """(C, H, W) of each tapped feature for a (in_channels, height, width) input, without compute.

    Runs the model on PyTorch's "meta" device (shapes only, no data, no memory), so it is exact for
    any module and costs microseconds per layer; used to check `num_patches` before training.
    """
    meta = {
        name: torch.empty_like(t, device="meta")
        for name, t in [*model.named_parameters(), *model.named_buffers()]
    }
    x = torch.empty(1, in_channels, height, width, device="meta")
    h = x
    shapes: dict[int, tuple[int, int, int]] = {}
    try:
        for i, module in enumerate(model):
            prefix = f"{i}."
            own = {k[len(prefix) :]: v for k, v in meta.items() if k.startswith(prefix)}
            h = functional_call(module, own, (h,))
            shapes[i] = (int(h.shape[1]), int(h.shape[2]), int(h.shape[3]))
            if i == layers[-1]:
                break
    except RuntimeError as exc:
        raise NCEConfigError(
            f"a {height}x{width} image is too small for the generator "
            f"({str(exc).splitlines()[0][:120]}); raise the crop size"
        ) from None
    return [shapes[i] for i in layers]


def layers_with_fewer_positions(
    shapes: Sequence[tuple[int, int, int]], layers: Sequence[int], num_patches: int
) -> dict[int, int]:
    """{layer: positions} for the tapped maps with fewer than `num_patches` positions: those
    layers use all their positions (the reference's min(num_patches, H*W)); the method logs it.

    `num_patches` itself must be a positive integer (a one-line error otherwise).
    """
    if isinstance(num_patches, bool) or not isinstance(num_patches, int) or num_patches < 1:
        raise NCEConfigError(f"method.num_patches must be a positive integer, got {num_patches!r}")
    return {
        layer: h * w for layer, (_, h, w) in zip(layers, shapes, strict=True) if h * w < num_patches
    }
