"""The three networks of CUT/FastCUT in one container: G (A -> B), D (scores domain B), F (patches).

One container, so one state dict saves and loads them all (keys ``G.*``, ``D.*``, ``F.*``). G and D
come from the `model` group's `NetworkSpec` (``cut``, CUT's anti-aliased networks, by default;
``resnet`` and ``paper`` generators work too: G must keep its layers in one ``nn.Sequential``
``.model`` to be tapped). Built and initialised in the reference's order: G, then D, then F, each
with the model's `init_type`/`init_gain` (the reference initialises F as it does G and D).

The patch sampler F is built **eagerly** here, from G's channel counts at the NCE layers, so all
parameters exist before the optimizers, DDP and checkpoint loading see the model (the reference
builds it at the first forward). With ``use_sampler=False`` (lambda_NCE = 0) there is no F, as the
reference then neither uses nor trains it.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from cyclegan.errors import ConfigError
from cyclegan.parts.nce.feature_taps import check_nce_layers, feature_channels
from cyclegan.parts.nce.patch_sampler import PatchSampler
from cyclegan.parts.networks.spec import NetworkSpec


class CUTNetworks(nn.Module):
    """G, D and F of CUT."""

    def __init__(
        self,
        spec: NetworkSpec,
        channels_A: int,
        channels_B: int,
        nce_layers: Sequence[int],
        netF_nc: int,
        use_sampler: bool,
    ) -> None:
        super().__init__()
        self.G = spec.build_generator(channels_A, channels_B)
        spec.initialise(self.G)
        model = getattr(self.G, "model", None)
        if not isinstance(model, nn.Sequential):
            raise ConfigError(
                f"method=cut taps a ResNet generator's layers, not a {type(self.G).__name__}; "
                "use model.generator=cut|resnet|paper"
            )
        self.D = spec.build_discriminator(channels_B)
        spec.initialise(self.D)
        spec.finish_discriminator(self.D)
        self.nce_layers = check_nce_layers(model, nce_layers)
        self.F: PatchSampler | None = None
        if use_sampler:
            channels = feature_channels(model, self.nce_layers, channels_A)
            self.F = PatchSampler(channels, netF_nc)
            spec.initialise(self.F)
