"""Adversarial objectives (`loss.gan_mode`): lsgan, vanilla, hinge and WGAN-GP with its penalty.

With D(x) the discriminator's score map (averaged over its patches and the batch, written E[.]),
x a real image of the domain and x~ = G(.) a generated one, the generator and discriminator losses:

    lsgan   (Mao et al. 2017; the seed's MSE)
        L_G = E[(D(x~) - 1)^2]              L_D = 1/2 (E[(D(x) - 1)^2] + E[D(x~)^2])
    vanilla (Goodfellow et al. 2014, non-saturating generator; cross-entropy on logits)
        L_G = E[softplus(-D(x~))]           L_D = 1/2 (E[softplus(-D(x))] + E[softplus(D(x~))])
    hinge   (Lim & Ye 2017; Miyato et al. 2018, often with spectral norm)
        L_G = -E[D(x~)]                     L_D = 1/2 (E[relu(1 - D(x))] + E[relu(1 + D(x~))])
    wgangp  (Gulrajani et al. 2017)
        L_G = -E[D(x~)]                     L_D = 1/2 (E[D(x~)] - E[D(x)] + lambda_gp * GP)
        GP  = E_i[(||grad_x^ sum_patches D(x^_i)||_2 - 1)^2],   x^_i = e_i x_i + (1 - e_i) x~_i,
              e_i ~ U[0, 1] per image

The 1/2 on L_D is the reference implementations' (the discriminator learns at half the generator's
pace); for wgangp it scales the whole critic loss, penalty included, so the ratio of penalty to
critic terms is the paper's lambda_gp (default 10). x~ in L_D is the replay buffer's fake, so the
interpolates lie between real images and buffer fakes. The official code has a ``wgangp`` mode whose
penalty its CycleGAN model never calls; here `discriminator_loss` always applies it.

`lambda_gp` only matters for ``wgangp``; ``wgangp`` without a positive `lambda_gp` is refused (a
critic without its penalty has no Lipschitz constraint and diverges).

Zero-centred gradient penalties (Mescheder et al. 2018), for every mode, off at weight 0:

    R1 = lambda_r1 / 2 * E_i[||grad_x sum_patches D(x_i)||^2]      on real images x
    R2 = lambda_r2 / 2 * E_i[||grad_x~ sum_patches D(x~_i)||^2]    on the fakes D is shown
    L_D = 1/2 (real term + fake term [+ lambda_gp GP] + R1 + R2)

They push D's gradient at the data (and at the fakes) to zero, which keeps it from growing sharp
around the real images. As with GP, the gradient is of D's summed patch map, and the penalties sit
inside the 1/2, so lambda_r1 is the penalty's weight relative to the adversarial terms. Lazy
regularisation (StyleGAN2, Karras et al. 2020): with `reg_every` N > 1 they are added on steps 0,
N, 2N, ... only, multiplied by N, so their mean weight per step stays the configured one.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

import torch
from torch import nn
from torch.nn import functional as F

from cyclegan.errors import parse_choice

Discriminator = Callable[[torch.Tensor], torch.Tensor]


class GanMode(StrEnum):
    """`loss.gan_mode`: the adversarial objective."""

    lsgan = "lsgan"
    vanilla = "vanilla"
    hinge = "hinge"
    wgangp = "wgangp"


def parse_gan_mode(gan_mode: str | GanMode) -> GanMode:
    """`gan_mode` as a GanMode; a one-line error naming the choices otherwise."""
    return parse_choice(GanMode, gan_mode, "loss.gan_mode")


class AdversarialLoss(nn.Module):
    """The generator's and the discriminator's adversarial losses for one `gan_mode`."""

    def __init__(
        self,
        gan_mode: str | GanMode,
        lambda_gp: float | None,
        lambda_r1: float = 0.0,
        lambda_r2: float = 0.0,
        reg_every: int = 1,
    ) -> None:
        super().__init__()
        self.gan_mode = parse_gan_mode(gan_mode)
        if lambda_gp is not None and lambda_gp < 0:
            raise ValueError(f"loss.lambda_gp must be >= 0, got {lambda_gp}")
        for name, value in (("lambda_r1", lambda_r1), ("lambda_r2", lambda_r2)):
            if not value >= 0:  # also catches NaN
                raise ValueError(f"loss.{name}={value}: must be >= 0 (0 turns the penalty off)")
        if isinstance(reg_every, bool) or not isinstance(reg_every, int) or reg_every < 1:
            raise ValueError(
                f"loss.reg_every={reg_every}: use a positive integer (1: every step; StyleGAN2: 16)"
            )
        self.lambda_r1, self.lambda_r2 = float(lambda_r1), float(lambda_r2)
        self.reg_every = reg_every
        if self.gan_mode is GanMode.wgangp and not lambda_gp:
            raise ValueError(
                f"loss.gan_mode=wgangp needs a gradient-penalty weight, got loss.lambda_gp={lambda_gp}; "
                "set loss.lambda_gp=10 (the WGAN-GP paper's) or choose another loss.gan_mode"
            )
        self.lambda_gp = float(lambda_gp or 0.0)

    @property
    def uses_penalty(self) -> bool:
        """Whether `discriminator_loss` adds the gradient penalty (wgangp)."""
        return self.gan_mode is GanMode.wgangp

    def zero_centred_weights(self, step: int) -> tuple[float, float]:
        """(R1, R2) weights at `step` (steps done before this one): lambda x reg_every on steps
        0, N, 2N, ... and 0 between them (lazy regularisation); both 0 when the penalties are off."""
        if step % self.reg_every:
            return 0.0, 0.0
        return self.lambda_r1 * self.reg_every, self.lambda_r2 * self.reg_every

    @staticmethod
    def zero_centred_penalty(
        scores: torch.Tensor, inputs: torch.Tensor, weight: float
    ) -> torch.Tensor:
        """weight / 2 * E_i ||grad_x sum_patches D(x_i)||^2 (R1 on reals, R2 on fakes).

        create_graph=True, so backpropagating the penalty reaches D's parameters; under DDP the
        later backward carries those terms to D, where they are all-reduced (as for GP)."""
        dtype = torch.promote_types(scores.dtype, torch.float32)  # half -> float32; float64 stays
        (grad,) = torch.autograd.grad(scores.to(dtype).sum(), inputs, create_graph=True)
        return 0.5 * weight * grad.to(dtype).flatten(1).pow(2).sum(dim=1).mean()

    def generator(self, pred_fake: torch.Tensor) -> torch.Tensor:
        """L_G: the generator's adversarial loss on D's scores for its fakes."""
        if self.gan_mode is GanMode.lsgan:
            return F.mse_loss(pred_fake, torch.ones_like(pred_fake))
        if self.gan_mode is GanMode.vanilla:
            return F.binary_cross_entropy_with_logits(pred_fake, torch.ones_like(pred_fake))
        return -pred_fake.mean()  # hinge, wgangp

    def real_term(self, pred_real: torch.Tensor) -> torch.Tensor:
        """The discriminator's loss on real images (before the 1/2)."""
        if self.gan_mode is GanMode.lsgan:
            return F.mse_loss(pred_real, torch.ones_like(pred_real))
        if self.gan_mode is GanMode.vanilla:
            return F.binary_cross_entropy_with_logits(pred_real, torch.ones_like(pred_real))
        if self.gan_mode is GanMode.hinge:
            return F.relu(1.0 - pred_real).mean()
        return -pred_real.mean()

    def fake_term(self, pred_fake: torch.Tensor) -> torch.Tensor:
        """The discriminator's loss on generated images (before the 1/2)."""
        if self.gan_mode is GanMode.lsgan:
            return F.mse_loss(pred_fake, torch.zeros_like(pred_fake))
        if self.gan_mode is GanMode.vanilla:
            return F.binary_cross_entropy_with_logits(pred_fake, torch.zeros_like(pred_fake))
        if self.gan_mode is GanMode.hinge:
            return F.relu(1.0 + pred_fake).mean()
        return pred_fake.mean()

    def discriminator(
        self,
        pred_real: torch.Tensor,
        pred_fake: torch.Tensor,
        penalty: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """L_D from D's scores; `penalty` is GP already weighted by lambda_gp (wgangp only)."""
        return self._combine(self.real_term(pred_real), self.fake_term(pred_fake), penalty)

    def _combine(
        self,
        real_term: torch.Tensor,
        fake_term: torch.Tensor,
        penalty: torch.Tensor | None,
        zero_centred: torch.Tensor | None = None,
    ) -> torch.Tensor:
        loss = real_term + fake_term
        if zero_centred is not None:  # R1 + R2, already weighted
            loss = loss + zero_centred
        if self.uses_penalty:
            if penalty is None:
                raise ValueError(
                    "wgangp's discriminator loss needs its gradient penalty; call "
                    "discriminator_loss(D, real, fake) or pass penalty=gradient_penalty(...)"
                )
            loss = loss + penalty
        elif penalty is not None:
            raise ValueError(f"gan_mode={self.gan_mode} takes no gradient penalty")
        return 0.5 * loss

    def interpolates(
        self, real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """x^ = e x + (1 - e) x~, e ~ U[0, 1] per image; a leaf that requires grad."""
        if real.shape != fake.shape:
            raise ValueError(
                f"gradient penalty needs real and fake batches of one shape, got "
                f"{tuple(real.shape)} and {tuple(fake.shape)}"
            )
        dtype = torch.promote_types(real.dtype, torch.float32)  # half -> float32; float64 stays
        real, fake = real.detach().to(dtype), fake.detach().to(dtype)
        eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, generator=generator)
        return (eps * real + (1.0 - eps) * fake).requires_grad_(True)  # (B, C, H, W)

    def penalty_from(self, scores: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        """lambda_gp * GP from D's scores of the interpolates `x_hat` (see `interpolates`).

        The gradient is taken with create_graph=True, so backpropagating the penalty reaches D's
        parameters (its whole point). The per-image norm follows the official
        `cal_gradient_penalty`, including its 1e-16 added to the gradient (which keeps the norm's
        own gradient finite at zero). Under DDP this is the supported pattern: autograd.grad gives
        this process's input gradients, and the later ordinary backward of the loss carries the
        second-order terms to D's parameters, where DDP all-reduces them as usual.
        """
        (grad,) = torch.autograd.grad(
            outputs=scores.float().sum(), inputs=x_hat, create_graph=True, retain_graph=True
        )
        norms = (grad.flatten(1) + 1e-16).norm(2, dim=1)  # (B,)
        return self.lambda_gp * ((norms - 1.0) ** 2).mean()

    def gradient_penalty(
        self,
        D: Discriminator,
        real: torch.Tensor,
        fake: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """lambda_gp * GP on random interpolates of `real` and `fake` (see the module doc).

        D runs in float32 outside autocast here: the squared norm of a half-precision gradient
        overflows or underflows easily, and GradScaler's scale would otherwise enter the inner
        gradient.
        """
        x_hat = self.interpolates(real, fake, generator)
        with torch.autocast(device_type=x_hat.device.type, enabled=False):
            return self.penalty_from(D(x_hat), x_hat)

    def discriminator_loss(
        self,
        D: Discriminator,
        real: torch.Tensor,
        fake: torch.Tensor,
        generator: torch.Generator | None = None,
        joint: bool = False,
        step: int = 0,
    ) -> torch.Tensor:
        """L_D for one discriminator (`discriminator_terms`' ``loss_D``)."""
        return self.discriminator_terms(D, real, fake, generator, joint, step)["loss_D"]

    def discriminator_terms(
        self,
        D: Discriminator,
        real: torch.Tensor,
        fake: torch.Tensor,
        generator: torch.Generator | None = None,
        joint: bool = False,
        step: int = 0,
    ) -> dict[str, torch.Tensor]:
        """L_D for one discriminator and its terms: scores real and (detached) fake, adds the
        penalties if any. {"loss_D", "loss_D_real", "loss_D_fake"} (the terms before the 1/2).

        `joint=False` scores real, fake (and the interpolates) in separate calls, as the official
        code does: required with batch norm, whose statistics would otherwise mix real and fake.
        `joint=True` makes one call on their concatenation: the same numbers for per-image norms
        (instance, none), fewer kernel launches, and one forward per backward under DDP. It runs
        under the caller's autocast; with fp16 prefer joint=False (the penalty in float32).
        `step` (steps done before this one) decides whether a lazy R1/R2 applies this time.
        """
        w_r1, w_r2 = self.zero_centred_weights(step)
        # R1/R2 differentiate D's scores w.r.t. its inputs: leaves that require grad (only then,
        # so a run without them does exactly what it did before they existed).
        real = real.detach().requires_grad_(True) if w_r1 else real
        fake = fake.detach().requires_grad_(bool(w_r2))
        if not joint:
            penalty = self.gradient_penalty(D, real, fake, generator) if self.uses_penalty else None
            pred_real, pred_fake = D(real), D(fake)
        else:
            batch = [real, fake]
            if self.uses_penalty:
                x_hat = self.interpolates(real, fake, generator)
                batch.append(x_hat.to(real.dtype))
            scores = D(torch.cat(batch)).split(real.shape[0])
            pred_real, pred_fake = scores[0], scores[1]
            penalty = self.penalty_from(scores[2], x_hat) if self.uses_penalty else None
        zero_centred = None
        if w_r1:
            zero_centred = self.zero_centred_penalty(pred_real, real, w_r1)
        if w_r2:
            r2 = self.zero_centred_penalty(pred_fake, fake, w_r2)
            zero_centred = r2 if zero_centred is None else zero_centred + r2
        real_term, fake_term = self.real_term(pred_real), self.fake_term(pred_fake)
        return {
            "loss_D": self._combine(real_term, fake_term, penalty, zero_centred),
            "loss_D_real": real_term,
            "loss_D_fake": fake_term,
        }
