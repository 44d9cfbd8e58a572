"""CUT's and FastCUT's objective: the adversarial term and the PatchNCE terms, with their weights.

With G: A -> B, D the PatchGAN on domain B, x ~ A, y ~ B (Park et al. 2020, eq. 5):

    loss_D     = 1/2 (gan_D(D(y), real) + gan_D(D(G(x)), fake))   (+ the WGAN-GP, R1, R2 penalties)
    loss_G_GAN = lambda_GAN * gan_G(D(G(x)))
    loss_G     = loss_G_GAN + 1/2 (loss_NCE + loss_NCE_Y)     with nce_idt (CUT)
               = loss_G_GAN + loss_NCE                        without (FastCUT)

`gan_D`/`gan_G` follow `loss.gan_mode` (lsgan, CUT's default; vanilla; hinge; wgangp), the same
adversarial module CycleGAN uses (`cyclegan.parts.losses.adversarial`). The NCE terms are computed
by `cyclegan.parts.nce.generator_pass` with lambda_NCE applied per patch, as the reference does;
loss_NCE_Y is NCE(y, G(y)), the identity term on domain B. Values: conf/loss/cut.yaml and
fastcut.yaml (lambda_NCE 10, no identity term).
"""

from __future__ import annotations

import torch
from torch import nn

from cyclegan.parts.losses.adversarial import AdversarialLoss, GanMode


class CUTLoss(nn.Module):
    """The adversarial term (weighted) and the sum that makes loss_G."""

    def __init__(
        self,
        gan_mode: str | GanMode,
        lambda_gp: float | None,
        lambda_r1: float,
        lambda_r2: float,
        reg_every: int,
        lambda_GAN: float,
        lambda_NCE: float,
        nce_idt: bool,
    ) -> None:
        super().__init__()
        for name, value in (("lambda_GAN", lambda_GAN), ("lambda_NCE", lambda_NCE)):
            if not value >= 0:  # also catches NaN
                raise ValueError(f"loss.{name}={value}: loss weights must be >= 0")
        self.adversarial = AdversarialLoss(gan_mode, lambda_gp, lambda_r1, lambda_r2, reg_every)
        self.gan_mode = self.adversarial.gan_mode
        self.lambda_GAN, self.lambda_NCE = float(lambda_GAN), float(lambda_NCE)
        self.nce_idt = bool(nce_idt)

    @property
    def uses_nce(self) -> bool:
        """lambda_NCE = 0 turns PatchNCE off (no patch sampler is built or trained)."""
        return self.lambda_NCE > 0

    @property
    def uses_identity(self) -> bool:
        """Whether G also translates B images for loss_NCE_Y."""
        return self.nce_idt and self.uses_nce

    def generator_gan(self, pred_fake: torch.Tensor) -> torch.Tensor:
        """loss_G_GAN = lambda_GAN * gan_G(D(G(x))) (the method skips D when lambda_GAN = 0)."""
        return self.lambda_GAN * self.adversarial.generator(pred_fake)

    def generator_total(
        self, loss_G_GAN: torch.Tensor, loss_NCE: torch.Tensor, loss_NCE_Y: torch.Tensor
    ) -> torch.Tensor:
        """loss_G = loss_G_GAN + 1/2 (loss_NCE + loss_NCE_Y) with nce_idt, else + loss_NCE."""
        if self.uses_identity:
            return loss_G_GAN + 0.5 * (loss_NCE + loss_NCE_Y)
        return loss_G_GAN + loss_NCE
