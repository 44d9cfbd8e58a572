"""CUT's ResNet generator (Park et al., 2020), index for index as in its reference code.

The layout is the CycleGAN ResNet generator (c7s1-ngf, two downsamplings, n residual blocks, two
upsamplings, c7s1-3 + tanh) with CUT's anti-aliasing by default:

* downsampling = Conv3x3 stride 1 -> InstanceNorm -> ReLU -> `Downsample` (blur + subsample),
  instead of Conv3x3 stride 2 -> IN -> ReLU (``antialias=False``);
* upsampling = `Upsample` (zero-insert + blur) -> Conv3x3 stride 1 -> IN -> ReLU, instead of
  ConvTranspose2d stride 2 -> IN -> ReLU (``antialias_up=False``).

Module indices (``model.N``) and the ``filt`` buffers are those of the reference
(taesungp/contrastive-unpaired-translation, ``ResnetGenerator``), so its checkpoints load with
``strict=True``. With both flags off the layout is the official CycleGAN generator's (our
``model=paper``). With the defaults, CUT's NCE layers ``0,4,8,12,16`` are the padded input, the two
downsampling convs before their norm, and the outputs of residual blocks 1 and 5.

`encode(x, layers)` is CUT's ``encode_only`` pass: the features at those layers, stopping at the
last one (the decoder is not run); the channel counts and shapes are known without a forward pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cyclegan.parts.nce.feature_taps import (
    check_nce_layers,
    feature_channels,
    feature_shapes,
    tap_features,
)
from cyclegan.parts.networks.antialias import Downsample, Upsample
from cyclegan.parts.networks.resnet import ResidualBlock


class CUTResnetGenerator(nn.Module):
    """ResNet generator with anti-aliased sampling; `forward` translates, `encode` taps features."""

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        antialias: bool = True,
        antialias_up: bool = True,
    ) -> None:
        super().__init__()
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        if min(ngf, in_channels, out_channels) < 1:
            raise ValueError(f"ngf and channel counts must be >= 1, got ngf={ngf}")
        self.in_channels, self.out_channels, self.ngf = in_channels, out_channels, ngf
        self.n_blocks, self.antialias, self.antialias_up = n_blocks, antialias, antialias_up
        # In the terms of cyclegan.parts.networks.spec (and resnet.Generator's attribute).
        self.upsampling = "antialias" if antialias_up else "transposed"

        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, 7),
            nn.InstanceNorm2d(ngf),
            nn.ReLU(inplace=True),
        ]
        width = ngf
        for _ in range(2):  # H -> H/4
            stride = 1 if antialias else 2
            layers += [
                nn.Conv2d(width, width * 2, 3, stride=stride, padding=1),
                nn.InstanceNorm2d(width * 2),
                nn.ReLU(inplace=True),
            ]
            if antialias:  # blur after the activation, then subsample
                layers.append(Downsample(width * 2))
            width *= 2
        layers += [ResidualBlock(width, "instance", "conv_block") for _ in range(n_blocks)]
        for _ in range(2):  # H/4 -> H
            if antialias_up:
                layers += [Upsample(width), nn.Conv2d(width, width // 2, 3, padding=1)]
            else:
                layers.append(
                    nn.ConvTranspose2d(width, width // 2, 3, stride=2, padding=1, output_padding=1)
                )
            layers += [nn.InstanceNorm2d(width // 2), nn.ReLU(inplace=True)]
            width //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    @property
    def num_layers(self) -> int:
        """Number of modules in `model`; valid NCE layers are 0 .. num_layers - 1."""
        return len(self.model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, H, W) -> (B, C_out, H, W)
        return self.model(x)

    def encode(self, x: torch.Tensor, layers: Sequence[int]) -> list[torch.Tensor]:
        """Features at `layers` (checked once with `check_layers`), running up to the last only."""
        return tap_features(self.model, x, layers)

    def check_layers(self, layers: Sequence[int]) -> tuple[int, ...]:
        """`layers` as a tuple, or a one-line `NCEConfigError` if they cannot be tapped."""
        return check_nce_layers(self.model, layers)

    def feature_channels(self, layers: Sequence[int]) -> list[int]:
        """Channel counts at `layers`, without running (sizes the patch sampler's heads)."""
        return feature_channels(self.model, self.check_layers(layers), self.in_channels)

    def feature_shapes(
        self, layers: Sequence[int], height: int, width: int
    ) -> list[tuple[int, int, int]]:
        """(C, H, W) at `layers` for a height x width input, computed on the meta device."""
        return feature_shapes(
            self.model, self.check_layers(layers), self.in_channels, height, width
        )
