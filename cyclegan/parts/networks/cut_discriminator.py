"""CUT's PatchGAN discriminator: the official 70x70 PatchGAN with anti-aliased downsampling.

Each stride-2 conv of the official ``NLayerDiscriminator`` becomes Conv4x4 stride 1 -> [IN] ->
LeakyReLU(0.2) -> `Downsample` (blur + subsample), as in CUT's reference code
(taesungp/contrastive-unpaired-translation), so the convs sit at ``model.0, 3, 7, 11, 14`` and the
state dict holds ``n_layers`` ``filt`` buffers; its checkpoints load with ``strict=True``.
With ``antialias=False`` the layout is the official discriminator's. Widths ndf * min(2^i, 8);
no norm on the first conv; the score map is 30x30 at 256 px (6x6 at 64 px), as the official one.
"""

from __future__ import annotations

import torch
from torch import nn

from cyclegan.parts.networks.antialias import Downsample


class CUTNLayerDiscriminator(nn.Module):
    """PatchGAN with `n_layers` downsampling stages; the output is a (B, 1, h, w) score map."""

    def __init__(
        self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3, antialias: bool = True
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.in_channels = in_channels
        self.n_layers = n_layers
        self.antialias = antialias
        stride = 1 if antialias else 2

        def stage(c_in: int, c_out: int, norm: bool) -> list[nn.Module]:
            mods: list[nn.Module] = [nn.Conv2d(c_in, c_out, 4, stride=stride, padding=1)]
            if norm:
                mods.append(nn.InstanceNorm2d(c_out))
            mods.append(nn.LeakyReLU(0.2, inplace=True))
            if antialias:
                mods.append(Downsample(c_out))
            return mods

        layers = stage(in_channels, ndf, norm=False)
        width = ndf
        for n in range(1, n_layers):
            nxt = ndf * min(2**n, 8)
            layers += stage(width, nxt, norm=True)
            width = nxt
        nxt = ndf * min(2**n_layers, 8)
        layers += [
            nn.Conv2d(width, nxt, 4, stride=1, padding=1),
            nn.InstanceNorm2d(nxt),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(nxt, 1, 4, stride=1, padding=1),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, 1, h, w)
        return self.model(x)
