"""Build the generator or discriminator a `model.generator` / `model.discriminator` choice names.

The one place that maps a choice to its class (`cyclegan.parts.networks.choices` lists the choices
and the image sizes each accepts). Networks come back uninitialised: the method's network container
initialises them (`init_weights`) in its own order, then adds spectral norm where asked.
"""

from __future__ import annotations

from torch import nn

from cyclegan.parts.networks.choices import GeneratorKind, parse_generator
from cyclegan.parts.networks.cut_discriminator import CUTNLayerDiscriminator
from cyclegan.parts.networks.cut_resnet import CUTResnetGenerator
from cyclegan.parts.networks.norms import Norm, parse_norm
from cyclegan.parts.networks.patchgan import (
    DiscriminatorKind,
    NLayerDiscriminator,
    PixelDiscriminator,
    PyTorchGANDiscriminator,
)
from cyclegan.parts.networks.resnet import Generator
from cyclegan.parts.networks.unet import UNET_DOWNS, unet


def build_generator(
    kind: str | GeneratorKind,
    in_channels: int,
    out_channels: int,
    ngf: int,
    n_residual_blocks: int,
    norm: str | Norm,
    use_dropout: bool,
) -> nn.Module:
    """The generator `kind` names (resnet, paper, cut, unet_128, unet_256), not initialised.

    The ResNet generators take no dropout; CUT's networks use instance norm only.
    """
    kind, norm = parse_generator(kind), parse_norm(norm)
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


def build_discriminator(
    kind: str | DiscriminatorKind, channels: int, ndf: int, n_layers_D: int, norm: str | Norm
) -> nn.Module:
    """The discriminator `kind` names (pytorch_gan, basic, n_layers, pixel, cut), not initialised.

    `n_layers_D` is read by ``n_layers`` and ``cut`` (``basic`` is ``n_layers`` with 3).
    """
    try:
        kind = DiscriminatorKind(kind)
    except ValueError:
        choices = ", ".join(k.value for k in DiscriminatorKind)
        raise ValueError(f"unknown model.discriminator {kind!r}; choose one of {choices}") from None
    norm = parse_norm(norm)
    if kind is DiscriminatorKind.pytorch_gan:
        return PyTorchGANDiscriminator(channels, ndf, norm)
    if kind is DiscriminatorKind.cut:
        _instance_norm_only(kind, norm)
        return CUTNLayerDiscriminator(channels, ndf, n_layers_D)
    if kind is DiscriminatorKind.pixel:
        return PixelDiscriminator(channels, ndf, norm)
    depth = 3 if kind is DiscriminatorKind.basic else n_layers_D
    return NLayerDiscriminator(channels, ndf, depth, norm)


def _instance_norm_only(kind: str, norm: Norm) -> None:
    if norm is not Norm.instance:
        raise ValueError(f"CUT's {kind} networks use instance norm; set model.norm=instance")


def has_batch_norm(module: nn.Module) -> bool:
    """Whether `module` normalises over the batch (then images must not share a call)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters (the figure papers and model cards quote)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
