"""CycleGAN's three losses, with the weights users tune (`loss.lambda_cyc`, `loss.lambda_id`).

    loss_G = loss_GAN + lambda_cyc * loss_cycle + lambda_id * loss_identity
    loss_D = (gan(D(real), real) + gan(D(fake), fake)) / 2

`lambda_id` is an absolute weight here, as in PyTorch-GAN (default 5 with lambda_cyc 10). The
original paper's code instead multiplies its `lambda_identity` (0.5) by lambda_cyc, which is the
same 5 at the defaults but changes with lambda_cyc.
"""

from __future__ import annotations

from enum import StrEnum

import torch
from torch import nn
from torch.nn import functional as F


class GanMode(StrEnum):
    """Adversarial objective: least squares (LSGAN, the seed's MSE) or the original cross-entropy."""

    lsgan = "lsgan"
    vanilla = "vanilla"


class CycleGANLoss(nn.Module):
    """The adversarial, cycle-consistency and identity terms, and their weighted sum."""

    def __init__(
        self,
        gan_mode: str | GanMode = GanMode.lsgan,
        lambda_cyc: float = 10.0,
        lambda_id: float = 5.0,
    ) -> None:
        super().__init__()
        if lambda_cyc < 0 or lambda_id < 0:
            raise ValueError(
                f"loss weights must be >= 0, got lambda_cyc={lambda_cyc}, lambda_id={lambda_id}"
            )
        self.gan_mode = GanMode(gan_mode)
        self.lambda_cyc = float(lambda_cyc)
        self.lambda_id = float(lambda_id)

    def gan(self, prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        """Adversarial loss of a score map against the all-real (1) or all-fake (0) label."""
        target = torch.full_like(prediction, 1.0 if target_is_real else 0.0)
        if self.gan_mode is GanMode.lsgan:
            return F.mse_loss(prediction, target)
        return F.binary_cross_entropy_with_logits(prediction, target)

    @staticmethod
    def cycle(recovered: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """L1 between an image and its round trip through both generators."""
        return F.l1_loss(recovered, real)

    @staticmethod
    def identity(same: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """L1 between an image of the target domain and the generator's output on it."""
        return F.l1_loss(same, real)

    def generator_total(
        self, loss_GAN: torch.Tensor, loss_cycle: torch.Tensor, loss_identity: torch.Tensor
    ) -> torch.Tensor:
        """loss_G = loss_GAN + lambda_cyc * loss_cycle + lambda_id * loss_identity."""
        return loss_GAN + self.lambda_cyc * loss_cycle + self.lambda_id * loss_identity

    def discriminator(self, pred_real: torch.Tensor, pred_fake: torch.Tensor) -> torch.Tensor:
        """Halved so D learns at half the generator's pace, as in both reference implementations."""
        return 0.5 * (self.gan(pred_real, True) + self.gan(pred_fake, False))
