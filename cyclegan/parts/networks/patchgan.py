"""The PatchGAN discriminators: the seed's (PyTorch-GAN), the official N-layer PatchGAN and the
official 1x1 pixel discriminator.

The official two are junyanz/pytorch-CycleGAN-and-pix2pix's (``NLayerDiscriminator``, ``PixelDiscriminator``)
layer for layer, so official checkpoints load with ``strict=True`` (without spectral norm).

**PatchGAN** (``n_layers``, the official ``--n_layers_D``, default 3 = the "70x70 PatchGAN"): one
4x4 stride-2 conv without norm, n_layers - 1 further 4x4 stride-2 convs with norm, one 4x4 stride-1
conv with norm (widths ndf·min(2^k, 8)), each followed by LeakyReLU(0.2), and a 4x4 stride-1 conv
to one channel. Every score sees a square patch of side

    r(n) = 9·2^n - 2     (back through two stride-1 4x4 convs: 7; each stride-2 one: r -> 2r + 2)

(r = 70 for n = 3, 34 for n = 2, 142 for n = 4), and an H x H image gives a map of side

    s(H, n) = floor(H / 2^n) - 2     (each stride-2 conv floors H/2, each stride-1 conv takes 1)

which must be at least 1: `check_input_size` refuses deeper discriminators than the image allows.

**Pixel** discriminator (``pixel``): 1x1 convs only (ndf, 2ndf, 1), so each score judges one pixel's
colour; the map has the input's size. It penalises colour statistics, not structure.

**Spectral normalisation** (Miyato et al. 2018), `add_spectral_norm`: each conv weight W is used as
W / sigma(W), sigma the largest singular value of W reshaped to (out, in·k·k), estimated by one
power iteration per training forward; this bounds each layer's Lipschitz constant by 1. It wraps
the convs of any discriminator (torch.nn.utils.parametrizations), so the trainable tensor becomes
``<conv>.parametrizations.weight.original`` in the state dict. It composes with any norm; the usual
choice with it is ``norm=none``.

Norm and bias: `norm` is ``instance``, ``batch`` or ``none`` (see `cyclegan.parts.networks.norms`); convs
followed by a norm get a bias only with instance norm (the official rule). The first conv (no norm)
and the last have a bias always in the PatchGAN; in the pixel discriminator the official code ties
the last conv's bias to the rule as well.
"""

from __future__ import annotations

from enum import StrEnum

import torch
from torch import nn
from torch.nn.utils import parametrizations

from cyclegan.parts.networks.norms import Norm, conv_bias, norm_layer, parse_norm


class DiscriminatorKind(StrEnum):
    """`model.discriminator`: ``pytorch_gan`` (the seed's, `PyTorchGANDiscriminator`), the
    official `--netD` choices (``basic`` = ``n_layers`` with n=3, ``pixel``) and ``cut``."""

    pytorch_gan = "pytorch_gan"
    basic = "basic"
    n_layers = "n_layers"
    pixel = "pixel"
    cut = "cut"  # CUT's anti-aliased PatchGAN (cyclegan.parts.networks.cut_discriminator)


def patchgan_output_size(size: int, n_layers: int) -> int:
    """Side of the PatchGAN score map for an input side `size` (may be <= 0 when too deep)."""
    for _ in range(n_layers):  # 4x4, stride 2, pad 1: floor((s + 2 - 4) / 2) + 1 = floor(s / 2)
        size = size // 2
    return size - 2  # two 4x4 stride-1 pad-1 convs, one pixel each


def receptive_field(n_layers: int) -> int:
    """Side of the input patch one score sees (70 for the default n_layers=3)."""
    strides = [2] * n_layers + [1, 1]
    field = 1
    for stride in reversed(strides):  # back from one output pixel through 4x4 kernels
        field = (field - 1) * stride + 4
    return field


def max_n_layers(size: int) -> int:
    """The deepest PatchGAN that still gives a score map of at least 1x1 at this image size."""
    n = 0
    while patchgan_output_size(size, n + 1) >= 1:
        n += 1
    return n


class NLayerDiscriminator(nn.Module):
    """The official PatchGAN with `n_layers` stride-2 convs (3: the 70x70 PatchGAN)."""

    def __init__(
        self,
        in_channels: int = 3,
        ndf: int = 64,
        n_layers: int = 3,
        norm: str | Norm = Norm.instance,
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers_D must be >= 1, got {n_layers}; the official default is 3")
        norm = parse_norm(norm)
        self.n_layers, self.norm = n_layers, norm
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, True),
        ]
        mult = 1
        for n in range(1, n_layers + 1):  # the last of these has stride 1
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1, bias=bias),
                make_norm(ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def output_shape(self, height: int, width: int) -> tuple[int, int, int]:
        """Shape of the score map for an input of the given size (the target tensors need it)."""
        return (
            1,
            patchgan_output_size(height, self.n_layers),
            patchgan_output_size(width, self.n_layers),
        )

    def check_input_size(self, height: int, width: int | None = None) -> None:
        """One-line error, before any work, when the image is too small for this depth."""
        width = height if width is None else width
        side = min(height, width)
        if patchgan_output_size(side, self.n_layers) < 1:
            raise ValueError(
                f"model.n_layers_D={self.n_layers} is too deep for {height}x{width} images (the "
                f"score map would be empty); use n_layers_D <= {max_n_layers(side)} or larger images"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, 1, h, w)
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """The official 1x1 PatchGAN ("pixelGAN"): one score per pixel, from that pixel alone."""

    def __init__(
        self, in_channels: int = 3, ndf: int = 64, norm: str | Norm = Norm.instance
    ) -> None:
        super().__init__()
        norm = parse_norm(norm)
        self.norm = norm
        bias = conv_bias(norm)
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, ndf, 1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=bias),
            norm_layer(norm)(ndf * 2),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, 1, bias=bias),
        )

    def output_shape(self, height: int, width: int) -> tuple[int, int, int]:
        return (1, height, width)

    def check_input_size(self, height: int, width: int | None = None) -> None:
        """Any size works: every layer is 1x1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, 1, H, W)
        return self.net(x)


def add_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectrally normalise the weight of every conv inside `module` (in place; returns it).

    Initialise the weights first: the power-iteration vectors start from the weight present now
    (`init_weights` also works afterwards, on the unnormalised weight, but the vectors then need a
    few training forwards to catch up).
    """
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    if not convs:
        raise ValueError(f"{type(module).__name__} has no convolutions to spectrally normalise")
    for conv in convs:
        parametrizations.spectral_norm(conv)
    return module


class PyTorchGANDiscriminator(nn.Module):
    """The seed's PatchGAN (PyTorch-GAN): four 4x4 stride-2 blocks (no norm on the first), then
    ZeroPad2d((1, 0, 1, 0)) and a 4x4 conv to one channel, so the score map is exactly H/16 x W/16
    (16x16 at 256 px). LeakyReLU(0.2); `norm` and the conv biases follow the official rule
    (`cyclegan.parts.networks.norms`; instance: as PyTorch-GAN has it).
    """

    def __init__(self, in_channels: int, ndf: int, norm: str | Norm) -> None:
        super().__init__()
        norm = parse_norm(norm)
        self.norm = norm
        layers: list[nn.Module] = []
        in_ch = in_channels
        for i, out_ch in enumerate([ndf, ndf * 2, ndf * 4, ndf * 8]):
            bias = i == 0 or conv_bias(norm)  # the first conv has no norm, so always a bias
            layers.append(nn.Conv2d(in_ch, out_ch, 4, stride=2, padding=1, bias=bias))
            if i > 0:
                layers.append(norm_layer(norm)(out_ch))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            in_ch = out_ch
        # The asymmetric pad keeps the map at exactly H/16 after the final 4x4 conv.
        layers += [nn.ZeroPad2d((1, 0, 1, 0)), nn.Conv2d(in_ch, 1, 4, padding=1)]
        self.model = nn.Sequential(*layers)

    def output_shape(self, height: int, width: int) -> tuple[int, int, int]:
        """Shape of the score map for an input of the given size."""
        return (1, height // 16, width // 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, 1, H/16, W/16)
        return self.model(x)
