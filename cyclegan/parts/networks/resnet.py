"""ResNet generators, PyTorch-GAN's (the seed's) and the official CycleGAN one, and the one
residual block every ResNet generator here uses (CUT's anti-aliased generator too).

Module layouts mirror the two reference implementations index for index, so their state dicts load
with ``strict=True`` (PyTorch-GAN's ``G_AB_<epoch>.pth``, the official ``latest_net_G_A.pth``).
"""

from __future__ import annotations

import torch
from torch import nn

from cyclegan.parts.networks.norms import conv_bias, norm_layer, parse_norm


def _residual_branch(channels: int, norm: str) -> nn.Sequential:
    # Indices 0..6 match every reference: pad, conv, norm, relu, pad, conv, norm. Bias by the
    # official rule (cyclegan.parts.networks.norms): with instance norm, as the references have it.
    make_norm, bias = norm_layer(norm), conv_bias(norm)
    return nn.Sequential(
        nn.ReflectionPad2d(1),
        nn.Conv2d(channels, channels, 3, bias=bias),
        make_norm(channels),
        nn.ReLU(inplace=True),
        nn.ReflectionPad2d(1),
        nn.Conv2d(channels, channels, 3, bias=bias),
        make_norm(channels),
    )


class ResidualBlock(nn.Module):
    """x + F(x), F = two reflection-padded 3x3 convs with norm: the one residual block of every
    ResNet generator here (PyTorch-GAN's, the official one, CUT's).

    `branch` is the attribute F lives under, so each reference's state dicts load unchanged:
    ``block`` in PyTorch-GAN, ``conv_block`` in the official code and in CUT.
    """

    def __init__(self, channels: int, norm: str, branch: str) -> None:
        super().__init__()
        if branch not in ("block", "conv_block"):
            raise ValueError(f"branch must be 'block' or 'conv_block', got {branch!r}")
        self.branch = branch
        self.add_module(branch, _residual_branch(channels, norm))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self._modules[self.branch](x)


def _conv_norm_relu(in_ch: int, out_ch: int, norm: str, **conv_kwargs: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_ch, out_ch, bias=conv_bias(norm), **conv_kwargs),
        norm_layer(norm)(out_ch),
        nn.ReLU(inplace=True),
    ]


def _check_channels(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


class Generator(nn.Module):
    """ResNet generator: c7s1-ngf, d2ngf, d4ngf, n x R4ngf, u2ngf, ungf, c7s1-C_out + tanh.

    `upsampling="nearest"` is PyTorch-GAN's (Upsample x2 + 3x3 conv, which avoids the checkerboard
    artefacts of transposed convs); `"transposed"` is the original paper's ConvTranspose2d.
    PyTorch-GAN pads the first conv by the number of input channels (3 for RGB); we pad by 3, the
    7x7 kernel's half-width, which is the same for RGB and right for any channel count.
    `norm` (instance, the references' default; batch; none) follows the official code, including
    its rule for conv biases (`cyclegan.parts.networks.norms`); the last conv always has a bias.

    `in_channels`/`out_channels` (the official `input_nc`/`output_nc`) default to `channels`, so a
    grayscale -> RGB generator is `Generator(in_channels=1, out_channels=3)`; only the first and
    last convs depend on them, and the state-dict keys are the same for every channel count.
    """

    def __init__(
        self,
        channels: int = 3,
        ngf: int = 64,
        n_residual_blocks: int = 9,
        upsampling: str = "nearest",
        norm: str = "instance",
        *,
        in_channels: int | None = None,
        out_channels: int | None = None,
    ) -> None:
        super().__init__()
        norm = parse_norm(norm)
        if n_residual_blocks < 0:
            raise ValueError(f"n_residual_blocks must be >= 0, got {n_residual_blocks}")
        if upsampling not in ("nearest", "transposed"):
            raise ValueError(f"upsampling must be 'nearest' or 'transposed', got {upsampling!r}")
        self.in_channels = _check_channels(
            "in_channels", channels if in_channels is None else in_channels
        )
        self.out_channels = _check_channels(
            "out_channels", channels if out_channels is None else out_channels
        )
        # The input's channel count, under the name older callers read.
        self.channels = self.in_channels
        self.ngf = ngf
        self.n_residual_blocks = n_residual_blocks
        self.upsampling = upsampling
        self.norm = norm

        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            *_conv_norm_relu(self.in_channels, ngf, norm, kernel_size=7),
        ]
        width = ngf
        for _ in range(2):  # downsampling: H -> H/4
            layers += _conv_norm_relu(width, width * 2, norm, kernel_size=3, stride=2, padding=1)
            width *= 2
        branch = "block" if upsampling == "nearest" else "conv_block"  # each reference's name
        layers += [ResidualBlock(width, norm, branch) for _ in range(n_residual_blocks)]
        for _ in range(2):  # upsampling: H/4 -> H
            if upsampling == "nearest":
                layers.append(nn.Upsample(scale_factor=2))
                layers += _conv_norm_relu(width, width // 2, norm, kernel_size=3, padding=1)
            else:
                layers += [
                    nn.ConvTranspose2d(
                        width, width // 2, 3, 2, padding=1, output_padding=1, bias=conv_bias(norm)
                    ),
                    norm_layer(norm)(width // 2),
                    nn.ReLU(inplace=True),
                ]
            width //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, self.out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C, H, W)
        return self.model(x)
