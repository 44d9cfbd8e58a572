"""CUT's and FastCUT's losses, wired as in the reference's ``CUTModel`` (Park et al., 2020, eq. 5).

With G: A -> B, D the PatchGAN on domain B, F the patch sampler, x ~ A, y ~ B:

    fake_B = G(x),  idt_B = G(y)                     (one batched call on [x; y] when nce_idt)
    loss_D      = 0.5 * (MSE(D(fake_B.detach()), 0) + MSE(D(y), 1))                   (LSGAN)
    loss_G_GAN  = lambda_GAN * MSE(D(fake_B), 1)
    loss_NCE    = NCE(x, fake_B),   loss_NCE_Y = NCE(y, idt_B)
    loss_G      = loss_G_GAN + 0.5 * (loss_NCE + loss_NCE_Y)   if nce_idt   (CUT)
                = loss_G_GAN + loss_NCE                        otherwise    (FastCUT)
    NCE(src, tgt) = 1/L * sum_l mean_i lambda_NCE * patchnce(F_l(G_enc,l(tgt)), F_l(G_enc,l(src)))_i

where the patch positions are drawn on the source features (keys) and reused for the generated
image (queries). FastCUT's flip equivariance flips the whole input batch horizontally with
probability 1/2 before G; the query features are flipped back so positions still correspond (the
fake shown to D is not flipped back, as in the reference).

The functions take the networks and typed settings; the method owns the optimizers and decides
when D is stepped (the reference steps D, then computes the G loss against the updated D).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from cyclegan.losses import GanMode
from cyclegan.nce.feature_taps import CUT_NCE_LAYERS, NCEConfigError
from cyclegan.nce.patch_sampler import PatchSampler
from cyclegan.nce.patchnce import patch_nce_loss


@dataclass(frozen=True)
class CUTLossSettings:
    """The reference's CUT preset; FastCUT is `fastcut()` (lambda_NCE 10, no NCE identity, flips)."""

    lambda_GAN: float = 1.0
    lambda_NCE: float = 1.0
    nce_idt: bool = True
    flip_equivariance: bool = False
    nce_layers: tuple[int, ...] = CUT_NCE_LAYERS
    num_patches: int = 256
    nce_T: float = 0.07
    all_negatives_from_minibatch: bool = False
    gan_mode: GanMode = GanMode.lsgan

    def __post_init__(self) -> None:
        for name in ("lambda_GAN", "lambda_NCE"):
            value = getattr(self, name)
            if not value >= 0:  # also catches NaN
                raise NCEConfigError(f"{name} must be >= 0, got {value}; set loss.{name}=0 or more")
        if not self.nce_T > 0:
            raise NCEConfigError(f"nce_T must be > 0, got {self.nce_T}; CUT uses 0.07")
        if isinstance(self.num_patches, bool) or self.num_patches < 1:
            raise NCEConfigError(f"num_patches must be >= 1, got {self.num_patches}")
        object.__setattr__(self, "nce_layers", tuple(int(i) for i in self.nce_layers))
        object.__setattr__(self, "gan_mode", GanMode(self.gan_mode))

    @classmethod
    def fastcut(cls, **overrides: object) -> CUTLossSettings:
        """FastCUT's preset: lambda_NCE 10, no NCE identity term, flip-equivariance augmentation."""
        base = {"lambda_NCE": 10.0, "nce_idt": False, "flip_equivariance": True}
        return cls(**{**base, **overrides})


def adversarial_loss(
    prediction: torch.Tensor, target_is_real: bool, gan_mode: GanMode
) -> torch.Tensor:
    """Mean loss of a score map against the all-real (1) or all-fake (0) label."""
    target = torch.full_like(prediction, 1.0 if target_is_real else 0.0)
    if gan_mode is GanMode.lsgan:
        return F.mse_loss(prediction, target)
    return F.binary_cross_entropy_with_logits(prediction, target)


def translate(
    generator: nn.Module,
    real_A: torch.Tensor,
    real_B: torch.Tensor,
    nce_idt: bool,
    flipped: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """fake_B = G(real_A) and, with nce_idt, idt_B = G(real_B), from one batched call.

    `flipped`: flip the input batch along W first (FastCUT's equivariance augmentation; the caller
    draws it with probability 1/2 per step). The outputs stay flipped, as in the reference.
    """
    real = torch.cat((real_A, real_B)) if nce_idt else real_A
    if flipped:
        real = torch.flip(real, [3])
    fake = generator(real)
    n = real_A.shape[0]
    return fake[:n], (fake[n:] if nce_idt else None)


def discriminator_loss(
    discriminator: nn.Module, real_B: torch.Tensor, fake_B: torch.Tensor, gan_mode: GanMode
) -> dict[str, torch.Tensor]:
    """loss_D = 0.5 (gan(D(fake_B), fake) + gan(D(real_B), real)); fake_B is detached here."""
    loss_D_fake = adversarial_loss(discriminator(fake_B.detach()), False, gan_mode)
    loss_D_real = adversarial_loss(discriminator(real_B), True, gan_mode)
    return {
        "loss_D_fake": loss_D_fake,
        "loss_D_real": loss_D_real,
        "loss_D": 0.5 * (loss_D_fake + loss_D_real),
    }


def nce_loss(
    generator: nn.Module,
    sampler: PatchSampler,
    src: torch.Tensor,
    tgt: torch.Tensor,
    settings: CUTLossSettings,
    rng: torch.Generator | None = None,
    patch_ids: Sequence[torch.Tensor] | None = None,
    flipped: bool = False,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """NCE(src, tgt) (module docstring) and the patch ids used; ids from `patch_ids` or `rng`.

    `generator` must have `encode(x, layers)`; `tgt` is G's output on `src` (flipped if `flipped`).
    """
    layers = settings.nce_layers
    feat_q = generator.encode(tgt, layers)
    if flipped:  # undo the augmentation so query and key positions correspond
        feat_q = [torch.flip(f, [3]) for f in feat_q]
    feat_k = generator.encode(src, layers)
    k_pool, ids = sampler(feat_k, settings.num_patches, patch_ids, rng)
    q_pool, _ = sampler(feat_q, settings.num_patches, ids)
    images = src.shape[0]
    total = torch.zeros((), device=src.device)
    for q, k in zip(q_pool, k_pool, strict=True):
        per_patch = patch_nce_loss(
            q, k, images, settings.nce_T, settings.all_negatives_from_minibatch
        )
        total = total + (per_patch * settings.lambda_NCE).mean()
    return total / len(layers), ids


def generator_loss(
    generator: nn.Module,
    discriminator: nn.Module,
    sampler: PatchSampler,
    real_A: torch.Tensor,
    real_B: torch.Tensor,
    fake_B: torch.Tensor,
    idt_B: torch.Tensor | None,
    settings: CUTLossSettings,
    rng: torch.Generator | None = None,
    patch_ids: Mapping[str, Sequence[torch.Tensor]] | None = None,
    flipped: bool = False,
) -> tuple[dict[str, torch.Tensor], dict[str, list[torch.Tensor]]]:
    """loss_G_GAN, loss_NCE, loss_NCE_Y (with nce_idt) and loss_G; and the patch ids drawn.

    Ids are drawn from `rng` (NCE's first, then NCE_Y's), or taken from `patch_ids` under the keys
    "NCE" / "NCE_Y" (to replay a step). D should be frozen by the caller (no grads to D wanted).
    """
    given = patch_ids or {}
    losses: dict[str, torch.Tensor] = {}
    if settings.lambda_GAN > 0:
        pred_fake = discriminator(fake_B)
        losses["loss_G_GAN"] = (
            adversarial_loss(pred_fake, True, settings.gan_mode) * settings.lambda_GAN
        )
    else:
        losses["loss_G_GAN"] = torch.zeros((), device=fake_B.device)
    ids: dict[str, list[torch.Tensor]] = {}
    zero = torch.zeros((), device=fake_B.device)
    if settings.lambda_NCE > 0:
        losses["loss_NCE"], ids["NCE"] = nce_loss(
            generator, sampler, real_A, fake_B, settings, rng, given.get("NCE"), flipped
        )
    else:
        losses["loss_NCE"] = zero
    if settings.nce_idt and settings.lambda_NCE > 0:
        if idt_B is None:
            raise ValueError("nce_idt needs idt_B = G(real_B); translate with nce_idt=True")
        losses["loss_NCE_Y"], ids["NCE_Y"] = nce_loss(
            generator, sampler, real_B, idt_B, settings, rng, given.get("NCE_Y"), flipped
        )
        loss_nce_both = 0.5 * (losses["loss_NCE"] + losses["loss_NCE_Y"])
    else:
        losses["loss_NCE_Y"] = zero
        loss_nce_both = losses["loss_NCE"]
    losses["loss_G"] = losses["loss_G_GAN"] + loss_nce_both
    return losses, ids
