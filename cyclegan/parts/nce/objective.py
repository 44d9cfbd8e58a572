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

A training step, in the reference's order: `CUTGeneratorPass` (fake_B, idt_B and the NCE terms,
one call of one module: what DDP wraps), then D's update on `discriminator_loss`, then with D
frozen loss_G_GAN = lambda_GAN * `adversarial_loss`(D(fake_B), real) against the updated D, and
`generator_total`; one backward, then G's and F's optimizers step. The method owns the optimizers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from cyclegan.parts.losses.cyclegan import GanMode
from cyclegan.parts.nce.feature_taps import (
    CUT_NCE_LAYERS,
    NCEConfigError,
    check_nce_layers,
    tap_features,
)
from cyclegan.parts.nce.patch_sampler import PatchSampler
from cyclegan.parts.nce.patchnce import patch_nce_loss


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
    prediction: torch.Tensor, target_is_real: bool, gan_mode: GanMode | str
) -> torch.Tensor:
    """Mean loss of a score map against the all-real (1) or all-fake (0) label."""
    target = torch.full_like(prediction, 1.0 if target_is_real else 0.0)
    if GanMode(gan_mode) is GanMode.lsgan:
        return F.mse_loss(prediction, target)
    return F.binary_cross_entropy_with_logits(prediction, target)


def generate_fakes(
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


def layer_nce(
    sampler: PatchSampler,
    feat_q: Sequence[torch.Tensor],
    feat_k: Sequence[torch.Tensor],
    settings: CUTLossSettings,
    rng: torch.Generator | None = None,
    patch_ids: Sequence[torch.Tensor] | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """1/L sum_l mean_i lambda_NCE * patchnce_i over the tapped layers, and the patch ids used.

    Ids are drawn on the key (source) features from `rng`, or `patch_ids` are reused, and the same
    ids are applied to the query features, so q and k rows are the same locations.
    """
    k_pool, ids = sampler(feat_k, settings.num_patches, patch_ids, rng)
    q_pool, _ = sampler(feat_q, settings.num_patches, ids)
    images = feat_k[0].shape[0]
    total = torch.zeros((), device=feat_k[0].device)
    for q, k in zip(q_pool, k_pool, strict=True):
        per_patch = patch_nce_loss(
            q, k, images, settings.nce_T, settings.all_negatives_from_minibatch
        )
        total = total + (per_patch * settings.lambda_NCE).mean()
    return total / len(feat_k), ids


def generator_total(
    loss_G_GAN: torch.Tensor,
    loss_NCE: torch.Tensor,
    loss_NCE_Y: torch.Tensor,
    settings: CUTLossSettings,
) -> torch.Tensor:
    """loss_G = loss_G_GAN + 0.5 (loss_NCE + loss_NCE_Y) with nce_idt, else + loss_NCE."""
    if settings.nce_idt and settings.lambda_NCE > 0:
        return loss_G_GAN + 0.5 * (loss_NCE + loss_NCE_Y)
    return loss_G_GAN + loss_NCE


class CUTGeneratorPass(nn.Module):
    """G and F in one module whose forward does all the generator-side work of a CUT step.

    Under DDP this is the module that gets wrapped (as CycleGAN's generator pair is): one forward
    call and one backward per step, however many times G runs inside (translation, then the
    encoder on the generated images). The discriminator is not a submodule: the adversarial term
    is computed by the caller with D frozen, after D's own update, as the reference orders it.

    The source images' features only serve as keys, which the loss detaches, so they are computed
    without a graph (same values and gradients as the reference, less memory and time).
    With lambda_NCE = 0 there is no sampler (F is neither used nor trained, as in the reference).
    """

    def __init__(
        self, generator: nn.Module, sampler: PatchSampler | None, settings: CUTLossSettings
    ) -> None:
        super().__init__()
        model = getattr(generator, "model", None)
        if not isinstance(model, nn.Sequential):
            raise TypeError("CUT needs a generator whose layers are one nn.Sequential `.model`")
        self.layers = check_nce_layers(model, settings.nce_layers)
        if settings.lambda_NCE > 0 and sampler is None:
            raise ValueError("lambda_NCE > 0 needs a patch sampler")
        self.G = generator
        self.F = sampler if settings.lambda_NCE > 0 else None
        self.settings = settings

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        return tap_features(self.G.model, x, self.layers)

    def forward(
        self,
        real_A: torch.Tensor,
        real_B: torch.Tensor,
        flipped: bool = False,
        rng: torch.Generator | None = None,
        patch_ids: Mapping[str, Sequence[torch.Tensor]] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, torch.Tensor], dict[str, list]]:
        """(fake_B, idt_B, {"loss_NCE", "loss_NCE_Y"}, patch ids {"NCE", "NCE_Y"}).

        `flipped`: FastCUT's augmentation for this step (drawn by the caller). Ids come from `rng`
        (NCE's, then NCE_Y's) or from `patch_ids` (to replay a step).
        """
        s, given = self.settings, patch_ids or {}
        fake_B, idt_B = generate_fakes(self.G, real_A, real_B, s.nce_idt, flipped)
        zero = torch.zeros((), device=real_A.device)
        nce = {"loss_NCE": zero, "loss_NCE_Y": zero}
        ids: dict[str, list] = {}
        if self.F is None:
            return fake_B, idt_B, nce, ids
        pairs = [("NCE", real_A, fake_B)]
        if s.nce_idt:
            pairs.append(("NCE_Y", real_B, idt_B))
        for name, src, tgt in pairs:
            feat_q = self.encode(tgt)
            if flipped:  # undo the augmentation so query and key positions correspond
                feat_q = [torch.flip(f, [3]) for f in feat_q]
            with torch.no_grad():
                feat_k = self.encode(src)
            nce[f"loss_{name}"], ids[name] = layer_nce(
                self.F, feat_q, feat_k, s, rng, given.get(name)
            )
        return fake_B, idt_B, nce, ids
