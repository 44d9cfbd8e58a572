"""The architecture of a generator state dict, read off its keys and shapes (foreign files record
none): a ResNet's width, residual blocks, layout (PyTorch-GAN's ``block.`` or the official
``conv_block.``), norm and channels, or an official U-Net's. `cyclegan.inference.importers` builds
the generator from what this reads and loads it with ``strict=True``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from cyclegan.checkpoints.file import CheckpointError
from cyclegan.parts.networks.spec import GeneratorSpec
from cyclegan.parts.networks.unet import infer_unet_spec, is_unet_state_dict

# The residual blocks' attribute per upsampling layout, and the keys that show a layout.
BLOCK_ATTR = {"nearest": "block", "transposed": "conv_block", "antialias": "conv_block"}
BLOCK_KEY = re.compile(r"^model\.(\d+)\.(block|conv_block)\.")
_TOP_CONV_KEY = re.compile(r"^model\.(\d+)\.weight$")
_LAYOUT = {"nearest": "PyTorch-GAN's (format=pytorch-gan)", "transposed": "the official (format=official)"}  # fmt: skip


def infer_spec(tensors: Mapping[str, torch.Tensor], upsampling: str | None = None) -> GeneratorSpec:
    """Architecture of a generator state dict (ResNet or official U-Net), from keys and shapes.

    `upsampling`: the ResNet layout a forced format names; it must agree with the residual blocks'
    keys, and it is what tells the layout of a generator without residual blocks.
    """
    if is_unet_state_dict(tensors):
        unet = infer_unet_spec(tensors)
        return GeneratorSpec(
            unet.in_channels,
            unet.ngf,
            0,
            "transposed",
            unet.out_channels,
            num_downs=unet.num_downs,
            norm=unet.norm.value,
        )
    first = tensors.get("model.1.weight")
    if first is None or first.dim() != 4 or tuple(first.shape[2:]) != (7, 7):
        raise CheckpointError(
            "no 7x7 first convolution at 'model.1.weight': not a CycleGAN ResNet generator"
        )
    n_blocks, upsampling = _resnet_blocks(tensors, upsampling)
    in_channels, out_channels = io_channels(tensors)
    # The official bias rule tells the norm: conv biases only next to instance norm (pre-0.4
    # files also carry instance-norm running stats, so those cannot tell), batch norm's weight.
    norm = (
        "instance"
        if "model.1.bias" in tensors
        else "batch"
        if "model.2.weight" in tensors
        else "none"
    )
    return GeneratorSpec(
        in_channels, int(first.shape[0]), n_blocks, upsampling, out_channels, norm=norm
    )


def _resnet_blocks(tensors: Mapping[str, torch.Tensor], upsampling: str | None) -> tuple[int, str]:
    """(residual blocks, upsampling) of a ResNet state dict: the layout its blocks' keys show,
    which a forced format's must match; the forced one for a generator without blocks."""
    blocks = {int(m.group(1)): m.group(2) for k in tensors if (m := BLOCK_KEY.match(k))}
    if not blocks and upsampling is None:
        raise CheckpointError(
            "no residual blocks ('model.<i>.block.' or 'conv_block.' keys) in the weights; for a "
            "generator without them, name its layout: format=pytorch-gan or format=official"
        )
    if len(set(blocks.values())) > 1:
        raise CheckpointError("the weights mix 'block.' and 'conv_block.' residual blocks")
    # With dropout, index 6 of a block is its second conv (4-d); with batch norm, a BN weight (1-d).
    if any(
        re.match(r"^model\.\d+\.conv_block\.6\.weight$", k) and v.dim() == 4
        for k, v in tensors.items()
    ):
        raise CheckpointError(
            "this official generator was trained with dropout in its residual blocks "
            "(--no_dropout off); that layout is not supported"
        )
    if not blocks:
        return 0, str(upsampling)
    keyed = "nearest" if next(iter(blocks.values())) == "block" else "transposed"
    if upsampling not in (None, keyed):
        raise CheckpointError(
            f"the weights are in {_LAYOUT[keyed]} layout (residual blocks under "
            f"'{BLOCK_ATTR[keyed]}.'), not {_LAYOUT[upsampling]} one; drop format= "
            "(the layout is detected from the keys)"
        )
    return len(blocks), keyed


def io_channels(tensors: Mapping[str, torch.Tensor]) -> tuple[int, int]:
    """(input, output) channels of a generator: a U-Net's from its outermost convs, a ResNet's
    from its first and last 7x7 convs (the official code records neither `--input_nc` nor
    `--output_nc` in its files)."""
    if is_unet_state_dict(tensors):
        unet = infer_unet_spec(tensors)
        return unet.in_channels, unet.out_channels
    first = tensors.get("model.1.weight")
    convs = {
        int(m.group(1)): value
        for key, value in tensors.items()
        if (m := _TOP_CONV_KEY.match(key)) and value.dim() == 4 and tuple(value.shape[2:]) == (7, 7)
    }
    if first is None or len(convs) < 2:
        raise CheckpointError(
            "no first and last 7x7 convolutions ('model.<i>.weight'): not a CycleGAN ResNet generator"
        )
    return int(first.shape[1]), int(convs[max(convs)].shape[0])
