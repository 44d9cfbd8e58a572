"""The three networks of CUT/FastCUT in one container: G (A -> B), D (scores domain B), F (patches).

One container, so one state dict saves and loads them all (keys ``G.*``, ``D.*``, ``F.*``). The
generator and discriminator come in three variants:

* ``cut`` (default): CUT's anti-aliased ResNet generator and PatchGAN (`cut_resnet`,
  `cut_discriminator`), as in the reference code;
* ``resnet`` / ``paper``: our CycleGAN networks (`cyclegan.models`), which CUT can use as well.

The patch sampler F is built **eagerly** here, from G's channel counts at the NCE layers, so all
parameters exist before the optimizers, DDP and checkpoint loading see the model. With
``use_sampler=False`` (lambda_NCE = 0) there is no F, as the reference then neither uses nor trains it.
All weights get CUT's init: xavier_normal(gain 0.02) on conv/linear weights, zero biases.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from cyclegan.models import Discriminator, Generator
from cyclegan.nce.feature_taps import NCEConfigError, check_nce_layers, feature_channels
from cyclegan.nce.patch_sampler import PatchSampler
from cyclegan.networks.cut_discriminator import CUTNLayerDiscriminator
from cyclegan.networks.cut_resnet import CUTResnetGenerator, init_xavier_normal

VARIANTS = ("cut", "resnet", "paper")
# The NCE layers that tap the same places as CUT's 0,4,8,12,16 (padded input, the two downsampling
# convs, residual blocks 1 and 5) in each variant's generator.
DEFAULT_NCE_LAYERS = {
    "cut": (0, 4, 8, 12, 16),
    "resnet": (0, 4, 7, 10, 14),
    "paper": (0, 4, 7, 10, 14),
}


class CUTNetworks(nn.Module):
    """G, D and F of CUT; `translators()` gives the one direction it learns."""

    def __init__(
        self,
        variant: str = "cut",
        ngf: int = 64,
        ndf: int = 64,
        n_residual_blocks: int = 9,
        channels: int = 3,
        n_layers_D: int = 3,
        nce_layers: Sequence[int] | None = None,
        netF_nc: int = 256,
        use_sampler: bool = True,
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise NCEConfigError(
                f"CUT model variant must be one of {', '.join(VARIANTS)}, got {variant!r}"
            )
        self.variant = variant
        if variant == "cut":
            self.G: nn.Module = CUTResnetGenerator(channels, channels, ngf, n_residual_blocks)
            self.D: nn.Module = CUTNLayerDiscriminator(channels, ndf, n_layers_D)
        else:
            upsampling = "nearest" if variant == "resnet" else "transposed"
            self.G = Generator(channels, ngf, n_residual_blocks, upsampling)
            self.D = Discriminator(channels, ndf, variant)
        layers = DEFAULT_NCE_LAYERS[variant] if nce_layers is None else tuple(nce_layers)
        self.nce_layers = check_nce_layers(self.G.model, layers)
        self.F: PatchSampler | None = None
        if use_sampler:
            self.F = PatchSampler(
                feature_channels(self.G.model, self.nce_layers, channels), netF_nc
            )
        init_xavier_normal(self, init_gain)

    def translators(self) -> dict[str, nn.Module]:
        """CUT is one-sided: only A -> B."""
        return {"AB": self.G}
