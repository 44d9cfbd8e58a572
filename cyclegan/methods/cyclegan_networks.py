"""CycleGAN's four networks in one container, so one state dict saves and loads them all.

G_AB translates A -> B, G_BA translates B -> A; D_A scores images of domain A, D_B of domain B. All
four come from the `model` group's `NetworkSpec` (generator and discriminator kinds, widths, norm,
init); each domain has its own channel count (`dataset.channels_A/B`: 1 for grayscale scans), so
G_AB maps channels_A -> channels_B, G_BA the reverse, and each discriminator reads its own domain.

Built in the order G_AB, G_BA, D_A, D_B and then initialised together: the order of the random
draws, which keeps a given seed's weights the same as they have always been.
"""

from __future__ import annotations

from torch import nn

from cyclegan.parts.networks.factory import has_batch_norm
from cyclegan.parts.networks.spec import NetworkSpec


class CycleGANNetworks(nn.Module):
    """G_AB, G_BA, D_A, D_B (keys ``G_AB.*``, ...), as the checkpoint's `model` holds them."""

    def __init__(self, spec: NetworkSpec, channels_A: int, channels_B: int) -> None:
        super().__init__()
        a, b = channels_A, channels_B
        self.G_AB = spec.build_generator(a, b)
        self.G_BA = spec.build_generator(b, a)
        self.D_A = spec.build_discriminator(a)
        self.D_B = spec.build_discriminator(b)
        spec.initialise(self)
        spec.finish_discriminator(self.D_A)
        spec.finish_discriminator(self.D_B)
        # Per-image norms make a network's output on a concatenated batch equal separate calls,
        # which the training step uses to batch its passes; batch norm does not.
        self.generators_per_image = not has_batch_norm(self.G_AB)
        self.discriminators_per_image = not has_batch_norm(self.D_A)

    def generator_parameters(self) -> list[nn.Parameter]:
        return [*self.G_AB.parameters(), *self.G_BA.parameters()]
