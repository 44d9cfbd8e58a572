"""CycleGAN's three losses, with the weights users tune (`loss.lambda_cyc`, `loss.lambda_id`).

    loss_G = loss_GAN + lambda_cyc * loss_cycle + lambda_id * loss_identity
    loss_D = (gan_D(D(real), real) + gan_D(D(fake), fake)) / 2   (+ the WGAN-GP, R1, R2 penalties)

The adversarial terms follow `loss.gan_mode` (lsgan, the seed's; vanilla; hinge; wgangp with its
gradient penalty weighted by `loss.lambda_gp`): equations in `cyclegan.parts.losses.adversarial`.
`lambda_id` is an absolute weight here, as in PyTorch-GAN (5 with lambda_cyc 10 by default). The
original paper's code instead multiplies its `lambda_identity` (0.5) by lambda_cyc, which is the
same 5 at the defaults but changes with lambda_cyc.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from cyclegan.parts.losses.adversarial import AdversarialLoss, GanMode

__all__ = ["CycleGANLoss", "GanMode"]


class CycleGANLoss(nn.Module):
    """The adversarial, cycle-consistency and identity terms, and their weighted sum."""

    def __init__(
        self,
        gan_mode: str | GanMode,
        lambda_gp: float | None,
        lambda_r1: float,
        lambda_r2: float,
        reg_every: int,
        lambda_cyc: float,
        lambda_id: float,
    ) -> None:
        """Values: conf/loss/cyclegan.yaml (`loss=cyclegan`, picked by method=cyclegan); the
        R1/R2 penalties on D are the adversarial module's (`AdversarialLoss`)."""
        super().__init__()
        for name, value in (("lambda_cyc", lambda_cyc), ("lambda_id", lambda_id)):
            if not value >= 0:  # also catches NaN
                raise ValueError(f"loss.{name}={value}: loss weights must be >= 0")
        self.adversarial = AdversarialLoss(gan_mode, lambda_gp, lambda_r1, lambda_r2, reg_every)
        self.gan_mode = self.adversarial.gan_mode
        self.lambda_cyc = float(lambda_cyc)
        self.lambda_id = float(lambda_id)

    def gan(self, prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        """The discriminator's loss on a score map for real (True) or generated (False) images.

        For lsgan and vanilla this is also the generator's loss with target_is_real=True; use
        `generator_gan` for the generator, which is right for every mode.
        """
        if target_is_real:
            return self.adversarial.real_term(prediction)
        return self.adversarial.fake_term(prediction)

    def generator_gan(self, pred_fake: torch.Tensor) -> torch.Tensor:
        """The generator's adversarial loss on D's scores for its fakes."""
        return self.adversarial.generator(pred_fake)

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
        """Halved so D learns at half the generator's pace, as in both reference implementations
        (without the WGAN-GP penalty: `discriminator_loss` adds it)."""
        return 0.5 * (self.gan(pred_real, True) + self.gan(pred_fake, False))

    def discriminator_loss(
        self,
        D: Callable[[torch.Tensor], torch.Tensor],
        real: torch.Tensor,
        fake: torch.Tensor,
        joint: bool = True,
        step: int = 0,
    ) -> torch.Tensor:
        """loss_D for one discriminator, penalties included (`AdversarialLoss.discriminator_loss`;
        `step`, the steps done, schedules lazy R1/R2)."""
        return self.adversarial.discriminator_loss(D, real, fake, joint=joint, step=step)
