"""Generators, PatchGAN discriminators and the container that holds the four CycleGAN networks.

Three presets, chosen by `model=` in the config (each network can also be picked on its own with
`model.generator` / `model.discriminator`: the official U-Nets, the N-layer and pixel PatchGANs of
`cyclegan.parts.networks`):

* ``resnet`` (default) is PyTorch-GAN's CycleGAN as the seed article describes it: nearest-neighbour
  upsampling + conv in the generator, a discriminator of four stride-2 blocks (output H/16 x W/16).
* ``paper`` is the original paper's code (junyanz/pytorch-CycleGAN-and-pix2pix): transposed-conv
  upsampling and the 70x70 PatchGAN (three stride-2 convs, then two stride-1 convs; 30x30 at 256 px).
* ``cut`` is CUT's (taesungp/contrastive-unpaired-translation): the paper's layout with anti-aliased
  (blur) down- and upsampling in the generator and the discriminator, xavier init; method=cut and
  method=fastcut pick it, and CycleGAN can train with it too.

Module layouts mirror the two reference implementations index for index, so their state dicts load
with ``strict=True`` (PyTorch-GAN's ``G_AB_<epoch>.pth``, the official ``latest_net_G_A.pth``).
"""

from __future__ import annotations

from enum import StrEnum

import torch
from torch import nn

from cyclegan.parts.networks.choices import GeneratorKind, parse_generator
from cyclegan.parts.networks.cut_discriminator import CUTNLayerDiscriminator
from cyclegan.parts.networks.cut_resnet import CUTResnetGenerator
from cyclegan.parts.networks.init import init_weights
from cyclegan.parts.networks.norms import conv_bias, norm_layer, parse_norm
from cyclegan.parts.networks.patchgan import (
    DiscriminatorKind,
    add_spectral_norm,
    define_discriminator,
)
from cyclegan.parts.networks.unet import UNET_DOWNS, unet


class Variant(StrEnum):
    """Which reference architecture a model reproduces."""

    resnet = "resnet"
    paper = "paper"
    cut = "cut"  # CUT's anti-aliased networks (cyclegan.parts.networks.cut_resnet / cut_discriminator)


def _residual_branch(channels: int, norm: str = "instance") -> nn.Sequential:
    # Indices 0..6 match both references: pad, conv, norm, relu, pad, conv, norm. Bias by the
    # official rule (cyclegan.parts.networks.norms): with instance norm, as both references have it.
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
    """x + F(x) with F = two reflection-padded 3x3 convs; attribute `block` as in PyTorch-GAN."""

    def __init__(self, channels: int, norm: str = "instance") -> None:
        super().__init__()
        self.block = _residual_branch(channels, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class ResnetBlock(nn.Module):
    """The same block under the official code's attribute name `conv_block` (for its checkpoints)."""

    def __init__(self, channels: int, norm: str = "instance") -> None:
        super().__init__()
        self.conv_block = _residual_branch(channels, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


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
        block = ResidualBlock if upsampling == "nearest" else ResnetBlock
        layers += [block(width, norm) for _ in range(n_residual_blocks)]
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


class Discriminator(nn.Module):
    """PatchGAN discriminator: a map of real/fake scores, one per overlapping patch.

    `variant="resnet"`: PyTorch-GAN's four stride-2 blocks, then ZeroPad2d((1, 0, 1, 0)) + 4x4 conv,
    so the map is H/16 x W/16 (16x16 at 256 px).
    `variant="paper"`: the official 70x70 PatchGAN (n_layers=3): the fourth conv has stride 1 and the
    map is 30x30 at 256 px. Both use no norm on the first layer and LeakyReLU(0.2). `norm` and the
    conv biases follow the official rule (`cyclegan.parts.networks.norms`; instance: as the references).
    """

    def __init__(
        self, channels: int = 3, ndf: int = 64, variant: str = "resnet", norm: str = "instance"
    ) -> None:
        super().__init__()
        if variant not in (Variant.resnet.value, Variant.paper.value):
            raise ValueError(f"discriminator variant must be 'resnet' or 'paper', got {variant!r}")
        self.channels = _check_channels("channels", channels)
        self.variant = variant
        widths = [ndf, ndf * 2, ndf * 4, ndf * 8]
        strides = [2, 2, 2, 2] if variant == Variant.resnet.value else [2, 2, 2, 1]
        layers: list[nn.Module] = []
        in_ch = channels
        for i, (out_ch, stride) in enumerate(zip(widths, strides, strict=True)):
            bias = i == 0 or conv_bias(norm)  # the first conv has no norm, so always a bias
            layers.append(nn.Conv2d(in_ch, out_ch, 4, stride=stride, padding=1, bias=bias))
            if i > 0:
                layers.append(norm_layer(norm)(out_ch))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            in_ch = out_ch
        if variant == Variant.resnet.value:
            # The asymmetric pad keeps the map at exactly H/16 after the final 4x4 conv.
            layers.append(nn.ZeroPad2d((1, 0, 1, 0)))
        layers.append(nn.Conv2d(in_ch, 1, 4, padding=1))
        self.model = nn.Sequential(*layers)

    def output_shape(self, height: int, width: int) -> tuple[int, int, int]:
        """Shape of the score map for an input of the given size (the target tensors need it)."""
        if self.variant == Variant.resnet.value:
            return (1, height // 16, width // 16)
        h, w = height, width
        for _ in range(3):
            h, w = (h + 2 - 4) // 2 + 1, (w + 2 - 4) // 2 + 1
        for _ in range(2):
            h, w = h - 1, w - 1
        return (1, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, 1, h, w)
        return self.model(x)


def define_generator(
    name: str = "resnet",
    in_channels: int = 3,
    out_channels: int = 3,
    ngf: int = 64,
    n_residual_blocks: int = 9,
    norm: str = "instance",
    use_dropout: bool = False,
) -> nn.Module:
    """The generator `model.generator` names (see `cyclegan.parts.networks.choices`), not initialised.

    The ResNet generators (`resnet`, `paper`) take no dropout; the official U-Nets take every
    option.
    """
    kind = parse_generator(name)
    if kind.value in UNET_DOWNS:
        return unet(kind.value, in_channels, out_channels, ngf, norm, use_dropout)
    if use_dropout:
        raise ValueError(
            f"model.generator={kind} has no dropout; use a unet_128/unet_256 generator for it"
        )
    if kind is GeneratorKind.cut:
        _instance_norm_only(kind, norm)
        return CUTResnetGenerator(in_channels, out_channels, ngf, n_residual_blocks)
    upsampling = "nearest" if kind is GeneratorKind.resnet else "transposed"
    return Generator(
        ngf=ngf,
        n_residual_blocks=n_residual_blocks,
        upsampling=upsampling,
        norm=norm,
        in_channels=in_channels,
        out_channels=out_channels,
    )


def make_discriminator(
    name: str = "pytorch_gan",
    channels: int = 3,
    ndf: int = 64,
    n_layers_D: int = 3,
    norm: str = "instance",
) -> nn.Module:
    """The discriminator `model.discriminator` names, not initialised (spectral norm comes after
    the init, in the container)."""
    kind = DiscriminatorKind(name)
    if kind is DiscriminatorKind.pytorch_gan:
        return Discriminator(channels, ndf, Variant.resnet.value, norm)
    if kind is DiscriminatorKind.cut:
        _instance_norm_only(kind, norm)
        return CUTNLayerDiscriminator(channels, ndf, n_layers_D)
    return define_discriminator(kind, channels, ndf, n_layers_D, norm)


def _instance_norm_only(kind: str, norm: str) -> None:
    if norm != "instance":
        raise ValueError(f"CUT's {kind} networks use instance norm; set model.norm=instance")


# model=resnet, model=paper and model=cut in one word (the container's `variant` shorthand).
_VARIANT_NETS = {
    Variant.resnet: ("resnet", "pytorch_gan"),
    Variant.paper: ("paper", "basic"),
    Variant.cut: ("cut", "cut"),
}


class CycleGAN(nn.Module):
    """The four networks of CycleGAN in one container, so one state dict saves and loads them all.

    G_AB translates A -> B, G_BA translates B -> A; D_A scores images of domain A, D_B of domain B.
    `channels_A`/`channels_B` (default `channels`) are each domain's channel count, e.g. 1 for
    grayscale scans: G_AB maps channels_A -> channels_B, G_BA the reverse, and each
    discriminator reads its own domain's channels.
    `generator` and `discriminator` name the networks (`cyclegan.parts.networks.choices`); `variant` is
    shorthand for the two presets (resnet = resnet + pytorch_gan, paper = paper + basic) and is
    used for whichever of them is None. `norm` applies to every network (the official `--norm`),
    `init_type`/`init_gain` to every weight; `spectral_norm` wraps the discriminators' convs.
    """

    def __init__(
        self,
        variant: str | Variant = Variant.resnet,
        n_residual_blocks: int = 9,
        ngf: int = 64,
        ndf: int = 64,
        channels: int = 3,
        init_gain: float = 0.02,
        generator: str | None = None,
        discriminator: str | None = None,
        n_layers_D: int = 3,
        norm: str = "instance",
        use_dropout: bool = False,
        spectral_norm: bool = False,
        init_type: str = "normal",
        channels_A: int | None = None,
        channels_B: int | None = None,
    ) -> None:
        super().__init__()
        if variant not in tuple(Variant):
            raise ValueError(f"model variant must be 'resnet', 'paper' or 'cut', got {variant!r}")
        variant = Variant(variant)
        generator = generator or _VARIANT_NETS[variant][0]
        discriminator = discriminator or _VARIANT_NETS[variant][1]
        self.variant = variant
        self.channels_A = _check_channels(
            "channels_A", channels if channels_A is None else channels_A
        )
        self.channels_B = _check_channels(
            "channels_B", channels if channels_B is None else channels_B
        )
        a, b = self.channels_A, self.channels_B
        g_args = (ngf, n_residual_blocks, norm, use_dropout)
        self.G_AB = define_generator(generator, a, b, *g_args)
        self.G_BA = define_generator(generator, b, a, *g_args)
        self.D_A = make_discriminator(discriminator, a, ndf, n_layers_D, norm)
        self.D_B = make_discriminator(discriminator, b, ndf, n_layers_D, norm)
        init_weights(self, init_type, init_gain)
        if spectral_norm:
            add_spectral_norm(self.D_A)
            add_spectral_norm(self.D_B)
        # Per-image norms make a network's output on a concatenated batch equal separate calls,
        # which the training step uses to batch its passes; batch norm does not.
        self.generators_per_image = not _has_batch_norm(self.G_AB)
        self.discriminators_per_image = not _has_batch_norm(self.D_A)

    def generator_parameters(self) -> list[nn.Parameter]:
        return [*self.G_AB.parameters(), *self.G_BA.parameters()]


def _has_batch_norm(module: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters (the figure papers and model cards quote)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
