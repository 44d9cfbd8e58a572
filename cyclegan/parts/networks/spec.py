"""The architecture of one generator, as files and configs describe it, and how to rebuild it.

What an exported generator's JSON holds under "architecture", what a training checkpoint's
`config.model` implies, and what `cyclegan.inference.importers.infer_spec` reads off a foreign state dict:
a ResNet generator (PyTorch-GAN's, the official one with its norm, or CUT's anti-aliased one) or
an official U-Net.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from torch import nn

from cyclegan.parts.networks.cut_resnet import CUTResnetGenerator
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
