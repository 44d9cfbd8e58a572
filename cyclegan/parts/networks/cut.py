"""The three networks of CUT/FastCUT in one container: G (A -> B), D (scores domain B), F (patches).

One container, so one state dict saves and loads them all (keys ``G.*``, ``D.*``, ``F.*``). G and D
are any generator/discriminator of `cyclegan.parts.networks.resnet` (variants ``cut``, CUT's anti-aliased ones,
``resnet`` or ``paper``); G must keep its layers in one ``nn.Sequential`` ``.model`` to be tapped.

The patch sampler F is built **eagerly** here, from G's channel counts at the NCE layers, so all
parameters exist before the optimizers, DDP and checkpoint loading see the model (the reference
builds it at the first forward). With ``use_sampler=False`` (lambda_NCE = 0) there is no F, as the
reference then neither uses nor trains it.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from cyclegan.parts.nce.feature_taps import check_nce_layers, feature_channels
from cyclegan.parts.nce.patch_sampler import PatchSampler
from cyclegan.parts.networks.cut_resnet import init_xavier_normal

# The NCE layers that tap the same places as CUT's 0,4,8,12,16 (padded input, the two downsampling
# convs before their norm, residual blocks 1 and 5) in each variant's generator.
DEFAULT_NCE_LAYERS = {
    "cut": (0, 4, 8, 12, 16),
    "resnet": (0, 4, 7, 10, 14),
    "paper": (0, 4, 7, 10, 14),
}


class CUTNetworks(nn.Module):
    """G, D and F of CUT; `translators()` gives the one direction it learns."""

    def __init__(
        self,
        G: nn.Module,
        D: nn.Module,
        nce_layers: Sequence[int],
        netF_nc: int = 256,
        use_sampler: bool = True,
        in_channels: int = 3,
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        model = getattr(G, "model", None)
        if not isinstance(model, nn.Sequential):
            raise TypeError("CUT needs a generator whose layers are one nn.Sequential `.model`")
        self.G, self.D = G, D
        self.nce_layers = check_nce_layers(model, nce_layers)
        self.F: PatchSampler | None = None
        if use_sampler:
            channels = feature_channels(model, self.nce_layers, in_channels)
            self.F = PatchSampler(channels, netF_nc)
            init_xavier_normal(self.F, init_gain)  # CUT's init of F (biases zero)
            first = next(G.parameters())
            self.F.to(device=first.device, dtype=first.dtype)  # where G already is

    def translators(self) -> dict[str, nn.Module]:
        """CUT is one-sided: only A -> B."""
        return {"AB": self.G}
