"""What networks to build, as configs and files describe them.

`NetworkSpec` is the `model` config group: the generator and discriminator a method builds and
their settings (its fields are the group's keys; `conf/model/*.yaml` hold the values). A method
builds its networks from it, in its own container.

`GeneratorSpec` is one built generator's architecture, everything needed to rebuild it: what a
training checkpoint records for each translator, what an exported generator's JSON holds under
"architecture", and what `cyclegan.inference.resnet_layout.infer_spec` reads off a foreign state
dict: a ResNet generator (PyTorch-GAN's, the official one with its norm, or CUT's anti-aliased one)
or an official U-Net.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from torch import nn

from cyclegan.parts.networks.choices import GeneratorKind
from cyclegan.parts.networks.cut_resnet import CUTResnetGenerator
from cyclegan.parts.networks.factory import build_discriminator, build_generator
from cyclegan.parts.networks.init import InitType, init_weights
from cyclegan.parts.networks.norms import Norm
from cyclegan.parts.networks.patchgan import DiscriminatorKind, add_spectral_norm
from cyclegan.parts.networks.resnet import Generator
from cyclegan.parts.networks.unet import UNET_DOWNS, UnetGenerator

# model.generator -> upsampling ("antialias": CUT's blur + zero-insert, cyclegan.parts.networks)
UPSAMPLING = {"resnet": "nearest", "paper": "transposed", "cut": "antialias"}


@dataclass(frozen=True)
class GeneratorSpec:
    """Everything needed to rebuild a generator; what the exported JSON's "architecture" holds.

    `channels` is the input's channel count (the official `input_nc`), `out_channels` the
    output's (`output_nc`; defaults to `channels`): 1 for grayscale, 3 for RGB.
    """

    channels: int = 3
    ngf: int = 64
    n_residual_blocks: int = 9
    upsampling: str = "nearest"
    out_channels: int | None = None
    # > 0: the official U-Net with this many levels (unet_128: 7, unet_256: 8), with `norm`.
    num_downs: int = 0
    norm: str = "instance"

    def __post_init__(self) -> None:
        if self.out_channels is None:
            object.__setattr__(self, "out_channels", self.channels)

    @property
    def in_channels(self) -> int:
        return self.channels

    @property
    def variant(self) -> str:
        if self.num_downs:
            return f"unet_{2**self.num_downs}"
        return {v: k for k, v in UPSAMPLING.items()}[self.upsampling]

    @property
    def size_multiple(self) -> int:
        """Image sides must be multiples of this (translate pads to it)."""
        return 2**self.num_downs if self.num_downs else 4

    def details(self) -> str:
        """`ngf=64, 9 blocks` (ResNet; `, batch norm` unless instance) or `ngf=64, batch norm`."""
        if self.num_downs:
            return f"ngf={self.ngf}, {self.norm} norm"
        norm = "" if self.norm == "instance" else f", {self.norm} norm"
        return f"ngf={self.ngf}, {self.n_residual_blocks} blocks{norm}"

    def describe(self) -> str:
        """For logs: `resnet, ngf=64, 9 blocks` or `unet_256, ngf=64, batch norm`."""
        return f"{self.variant}, {self.details()}"

    def build(self) -> Generator | UnetGenerator | nn.Module:
        out = self.out_channels or self.channels
        if self.num_downs:
            return UnetGenerator(self.channels, out, self.num_downs, self.ngf, self.norm)
        if self.upsampling == "antialias":
            return CUTResnetGenerator(self.channels, out, self.ngf, self.n_residual_blocks)
        return Generator(
            ngf=self.ngf,
            n_residual_blocks=self.n_residual_blocks,
            upsampling=self.upsampling,
            norm=self.norm,
            in_channels=self.channels,
            out_channels=out,
        )

    def to_dict(self) -> dict[str, Any]:
        data = {**asdict(self), "variant": self.variant}
        if not self.num_downs:  # ResNet exports keep the fields they always had
            del data["num_downs"]
            if self.norm == "instance":
                del data["norm"]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GeneratorSpec:
        # A training config names the generator (model.generator=unet_256); an export's JSON
        # carries num_downs and norm.
        generator = str(data.get("generator") or data.get("variant") or "resnet")
        num_downs = int(data.get("num_downs") or UNET_DOWNS.get(generator, 0))
        channels = int(data.get("in_channels", data.get("channels", 3)))
        common = {
            "channels": channels,
            "ngf": int(data["ngf"]),
            "out_channels": int(data.get("out_channels") or channels),
            "norm": str(data.get("norm", "instance")),
        }
        if num_downs:
            return cls(n_residual_blocks=0, upsampling="transposed", num_downs=num_downs, **common)
        upsampling = data.get("upsampling") or UPSAMPLING[generator]
        return cls(
            n_residual_blocks=int(data["n_residual_blocks"]), upsampling=str(upsampling), **common
        )


# Which settings each choice reads; a set key the chosen networks do not read is refused
# (cyclegan.config.preflight), e.g. model.n_layers_D with the seed's discriminator.
READS_N_LAYERS_D = (DiscriminatorKind.n_layers, DiscriminatorKind.cut)
RESNETS = (GeneratorKind.resnet, GeneratorKind.paper, GeneratorKind.cut)


@dataclass
class NetworkSpec:
    """The `model` group: one generator and one discriminator kind with their settings.

    A method builds as many of each as it trains (CycleGAN: two of each, CUT: one), for the
    channel counts of its domains, and initialises them with `init_type`/`init_gain` (the official
    initialisations, `cyclegan.parts.networks.init`); `spectral_norm` wraps the discriminators'
    convs after the init. Values live in conf/model/*.yaml; this class holds the types.
    """

    generator: GeneratorKind
    discriminator: DiscriminatorKind
    n_residual_blocks: int  # ResNet generators
    n_layers_D: int  # discriminator=n_layers or cut
    ngf: int
    ndf: int
    norm: Norm  # every network: instance | batch | none
    use_dropout: bool  # U-Net generators
    spectral_norm: bool
    init_type: InitType
    init_gain: float

    def build_generator(self, in_channels: int, out_channels: int) -> nn.Module:
        """A generator in_channels -> out_channels, not initialised (`initialise` does that)."""
        return build_generator(
            self.generator, in_channels, out_channels, self.ngf, self.n_residual_blocks,
            self.norm, self.use_dropout,
        )  # fmt: skip

    def build_discriminator(self, channels: int) -> nn.Module:
        """A discriminator for images of `channels` channels, not initialised."""
        return build_discriminator(
            self.discriminator, channels, self.ndf, self.n_layers_D, self.norm
        )

    def initialise(self, module: nn.Module) -> None:
        """`init_type`/`init_gain` on every conv/linear/batch-norm layer inside `module`."""
        init_weights(module, self.init_type, self.init_gain)

    def finish_discriminator(self, module: nn.Module) -> nn.Module:
        """Spectral norm where asked, after the init (its power iteration starts from it)."""
        return add_spectral_norm(module) if self.spectral_norm else module

    def generator_spec(self, in_channels: int, out_channels: int) -> GeneratorSpec:
        """The architecture of `build_generator(in_channels, out_channels)`, for the record."""
        kind = GeneratorKind(self.generator).value
        common = {"channels": in_channels, "out_channels": out_channels, "ngf": self.ngf}
        if kind in UNET_DOWNS:
            return GeneratorSpec(
                n_residual_blocks=0, upsampling="transposed", num_downs=UNET_DOWNS[kind],
                norm=str(self.norm), **common,
            )  # fmt: skip
        norm = str(self.norm)
        return GeneratorSpec(
            n_residual_blocks=self.n_residual_blocks, upsampling=UPSAMPLING[kind], norm=norm,
            **common,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """Plain values (enums as strings), as saved in checkpoints."""
        return {k: (str(v) if isinstance(v, StrEnum) else v) for k, v in asdict(self).items()}

    def unused_settings(self) -> dict[str, str]:
        """{key: why} for the keys these networks do not read."""
        unused = {}
        if GeneratorKind(self.generator) not in RESNETS:
            unused["n_residual_blocks"] = f"model.generator={self.generator} has no residual blocks"
        else:
            unused["use_dropout"] = f"model.generator={self.generator} has no dropout"
        if DiscriminatorKind(self.discriminator) not in READS_N_LAYERS_D:
            unused["n_layers_D"] = (
                f"model.discriminator={self.discriminator} has a fixed depth (n_layers_D is read "
                "by n_layers and cut)"
            )
        return unused
