"""The network choices users type, and the image sizes each accepts.

* generator (`model.generator`): ``resnet`` (PyTorch-GAN's, nearest upsampling), ``paper`` (the
  official ResNet, transposed convs), ``cut`` (CUT's ResNet: anti-aliased down/upsampling),
  ``unet_128``, ``unet_256`` (the official U-Net);
* discriminator (`model.discriminator`, `cyclegan.parts.networks.patchgan.DiscriminatorKind`):
  ``pytorch_gan`` (the seed's, H/16 map), ``basic`` (the 70x70 PatchGAN), ``n_layers`` (PatchGAN
  with `n_layers_D`), ``pixel`` (1x1), ``cut`` (CUT's anti-aliased PatchGAN, `n_layers_D` stages);
* norm (`cyclegan.parts.networks.norms`), init (`cyclegan.parts.networks.init`).

`check_image_size` is the one place that knows which image sizes each choice accepts, so a config
is validated before any work (``unet_256`` needs sides divisible by 256, a PatchGAN must not be
deeper than the image allows).
"""

from __future__ import annotations

from enum import StrEnum

from cyclegan.errors import parse_choice
from cyclegan.parts.networks.patchgan import (
    DiscriminatorKind,
    NLayerDiscriminator,
)
from cyclegan.parts.networks.unet import UNET_DOWNS


class GeneratorKind(StrEnum):
    """`model.generator`."""

    resnet = "resnet"
    paper = "paper"
    cut = "cut"
    unet_128 = "unet_128"
    unet_256 = "unet_256"


def parse_generator(name: str | GeneratorKind) -> GeneratorKind:
    return parse_choice(GeneratorKind, name, "model.generator")


def check_image_size(
    img_size: int,
    generator: str | GeneratorKind = GeneratorKind.resnet,
    discriminator: str | DiscriminatorKind = DiscriminatorKind.basic,
    n_layers_D: int = 3,
) -> None:
    """One-line ValueError naming the fix when `img_size` (a square side) cannot be used.

    (The ResNet generators' multiple-of-4 rule is already checked by the config schema.)
    """
    kind = parse_generator(generator)
    if kind.value in UNET_DOWNS:
        multiple = 2 ** UNET_DOWNS[kind.value]
        if img_size % multiple:
            raise ValueError(
                f"model.generator={kind} needs dataset.img_size divisible by {multiple} (it halves "
                f"the image {UNET_DOWNS[kind.value]} times), got {img_size}; set dataset.img_size="
                f"{max(multiple, img_size // multiple * multiple)} or use another generator"
            )
    disc = DiscriminatorKind(discriminator)
    if disc is DiscriminatorKind.pytorch_gan and img_size < 32:
        # Four stride-2 blocks: the last normalised map is img_size/16 on a side, and instance
        # norm needs more than one value per channel.
        raise ValueError(
            f"dataset.img_size={img_size} is too small for model.discriminator=pytorch_gan (its "
            "last normalised map would be 1x1); use dataset.img_size >= 32 or "
            "model.discriminator=basic"
        )
    if disc in (DiscriminatorKind.basic, DiscriminatorKind.n_layers):
        depth = 3 if disc is DiscriminatorKind.basic else n_layers_D
        NLayerDiscriminator(1, 1, depth, "none").check_input_size(img_size)
