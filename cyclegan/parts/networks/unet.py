"""The official U-Net generator (``unet_128``, ``unet_256``), module for module.

The U-Net of pix2pix (Isola et al. 2017), as junyanz/pytorch-CycleGAN-and-pix2pix builds it:
``num_downs`` stride-2 4x4 convolutions take an H x H image down to 1 x 1 (so H must be a multiple
of 2^num_downs: 128 for ``unet_128``, 7 downs, 256 for ``unet_256``, 8 downs), and as many stride-2
4x4 transposed convolutions take it back up. Every level but the outermost concatenates its input
with what its inner levels return, so fine detail skips the bottleneck:

    block_k(x) = cat([x, up_k(block_{k+1}(down_k(LeakyReLU_0.2(x))))], channels)

Widths, outermost to innermost: ngf, 2ngf, 4ngf, 8ngf, then 8ngf for the remaining num_downs - 4
levels. Dropout(0.5) (``use_dropout``, the pix2pix default) sits only in the num_downs - 5 middle
levels of width 8ngf, after their up-path norm.

The blocks are nested modules, so the state-dict keys are the official ones: the outermost block
is ``model``, its layers ``model.model.<i>``, the next block ``model.model.1``, then
``model.model.1.model.3`` and one more ``.model.3`` per level. Official checkpoints load with
``strict=True``.

A quirk of the official code that needs no copying: its inner blocks start with an in-place
LeakyReLU, which also rewrites the tensor the block then concatenates, so its skip connection
carries LeakyReLU(x) rather than x. The next layer to see the concatenation is always the parent
level's ReLU, and ReLU(LeakyReLU(x)) = ReLU(x) (values and gradients), so concatenating x, as we
do with an out-of-place LeakyReLU, computes the same network (checked against the official files).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from cyclegan.parts.networks.norms import Norm, conv_bias, norm_layer, parse_norm

UNET_DOWNS = {"unet_128": 7, "unet_256": 8}


class UnetSkipConnectionBlock(nn.Module):
    """One level of the U-Net: down, the inner levels, up; the input concatenated to the result.

    Layouts of `model` (indices are the official state-dict keys):
      outermost: [Conv(in, inner), submodule, ReLU, ConvT(2 inner, out), Tanh]
      middle:    [LeakyReLU, Conv(out, inner), norm(inner), submodule, ReLU,
                  ConvT(2 inner, out), norm(out), (Dropout(0.5))]
      innermost: [LeakyReLU, Conv(out, inner), ReLU, ConvT(inner, out), norm(out)]
    """

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        norm: str | Norm = Norm.batch,
        use_dropout: bool = False,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        make_norm = norm_layer(norm)
        bias = conv_bias(norm)
        input_nc = outer_nc if input_nc is None else input_nc
        # The outermost down-conv follows the official bias rule too (no bias with batch norm).
        downconv = nn.Conv2d(input_nc, inner_nc, 4, stride=2, padding=1, bias=bias)
        if outermost:
            assert submodule is not None
            layers = [
                downconv,
                submodule,
                nn.ReLU(True),
                nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1),  # always biased
                nn.Tanh(),
            ]
        elif innermost:
            layers = [
                nn.LeakyReLU(0.2),
                downconv,
                nn.ReLU(True),
                nn.ConvTranspose2d(inner_nc, outer_nc, 4, stride=2, padding=1, bias=bias),
                make_norm(outer_nc),
            ]
        else:
            assert submodule is not None
            layers = [
                nn.LeakyReLU(0.2),
                downconv,
                make_norm(inner_nc),
                submodule,
                nn.ReLU(True),
                nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1, bias=bias),
                make_norm(outer_nc),
            ]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)  # (B, 2 outer, H, W); see the module doc


class UnetGenerator(nn.Module):
    """The official U-Net generator: `num_downs` levels, widths ngf..8ngf, tanh output.

    Takes (B, in_channels, H, W) with H and W multiples of 2^num_downs, returns
    (B, out_channels, H, W) in [-1, 1].
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_downs: int = 8,
        ngf: int = 64,
        norm: str | Norm = Norm.batch,
        use_dropout: bool = False,
    ) -> None:
        super().__init__()
        if num_downs < 5:
            raise ValueError(
                f"a U-Net needs num_downs >= 5 (its four widening levels and the innermost), "
                f"got {num_downs}; use unet_128 (7) or unet_256 (8)"
            )
        norm = parse_norm(norm)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.num_downs, self.ngf, self.norm, self.use_dropout = num_downs, ngf, norm, use_dropout
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True, norm=norm)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(
                ngf * 8, ngf * 8, submodule=block, norm=norm, use_dropout=use_dropout
            )
        for mult in (4, 2, 1):  # 4ngf <- 8ngf, 2ngf <- 4ngf, ngf <- 2ngf
            block = UnetSkipConnectionBlock(ngf * mult, ngf * mult * 2, submodule=block, norm=norm)
        self.model = UnetSkipConnectionBlock(
            out_channels, ngf, input_nc=in_channels, submodule=block, outermost=True, norm=norm
        )

    @property
    def size_multiple(self) -> int:
        """Image sides must be multiples of this (the innermost map is 1 x 1 at the smallest)."""
        return 2**self.num_downs

    def check_input_size(self, height: int, width: int | None = None) -> None:
        """One-line error, before any work, when the image cannot pass through every level."""
        width = height if width is None else width
        m = self.size_multiple
        if height % m or width % m:
            name = {7: "unet_128", 8: "unet_256"}.get(
                self.num_downs, f"{self.num_downs}-level U-Net"
            )
            raise ValueError(
                f"{name} needs image sides divisible by {m} (it halves them {self.num_downs} "
                f"times), got {height}x{width}; set dataset.img_size to a multiple of {m} or "
                f"choose another generator"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, in, H, W) -> (B, out, H, W)
        return self.model(x)


def unet(
    name: str,
    in_channels: int = 3,
    out_channels: int = 3,
    ngf: int = 64,
    norm: str | Norm = Norm.batch,
    use_dropout: bool = False,
) -> UnetGenerator:
    """`unet_128` or `unet_256` by name (the official `--netG` values)."""
    if name not in UNET_DOWNS:
        raise ValueError(f"unknown U-Net {name!r}; choose one of {', '.join(UNET_DOWNS)}")
    return UnetGenerator(in_channels, out_channels, UNET_DOWNS[name], ngf, norm, use_dropout)


# ---------------------------------------------------------------------------------- checkpoints

_LEVEL = re.compile(r"^((?:model\.model\.1)(?:\.model\.3)*)\.model\.1\.weight$")


@dataclass(frozen=True)
class UnetSpec:
    """What an official U-Net state dict says about its architecture (dropout leaves no trace)."""

    in_channels: int
    out_channels: int
    num_downs: int
    ngf: int
    norm: Norm

    def build(self, use_dropout: bool = False) -> UnetGenerator:
        return UnetGenerator(
            self.in_channels, self.out_channels, self.num_downs, self.ngf, self.norm, use_dropout
        )


def is_unet_state_dict(tensors: Mapping[str, torch.Tensor]) -> bool:
    """True for the keys of an official U-Net generator (its nested `model.model.` paths)."""
    return "model.model.0.weight" in tensors and "model.model.3.weight" in tensors


def infer_unet_spec(tensors: Mapping[str, torch.Tensor]) -> UnetSpec:
    """The architecture of an official U-Net state dict, read off its keys and shapes.

    ngf and the input channels from the first conv (ngf, in, 4, 4), the output channels from the
    last transposed conv (2ngf, out, 4, 4), the depth by counting nested down-convs, and the norm
    from the keys: batch norm has running statistics, instance norm gives every conv a bias.
    """
    if not is_unet_state_dict(tensors):
        raise ValueError("not an official U-Net state dict (no 'model.model.0.weight')")
    first, last = tensors["model.model.0.weight"], tensors["model.model.3.weight"]
    levels = sum(1 for k in tensors if _LEVEL.match(k))
    if any(k.endswith("running_mean") for k in tensors):
        norm = Norm.batch
    elif "model.model.0.bias" in tensors:
        norm = Norm.instance
    else:
        norm = Norm.none
    return UnetSpec(
        in_channels=int(first.shape[1]),
        out_channels=int(last.shape[1]),
        num_downs=levels + 1,
        ngf=int(first.shape[0]),
        norm=norm,
    )
