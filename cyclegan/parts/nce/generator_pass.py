"""The generator side of a CUT/FastCUT step: translations and the PatchNCE terms, in one module.

With G: A -> B, F the patch sampler, x ~ A, y ~ B (Park et al. 2020):

    fake_B = G(x),  idt_B = G(y)                     (one batched call on [x; y] when nce_idt)
    loss_NCE   = NCE(x, fake_B),   loss_NCE_Y = NCE(y, idt_B)
    NCE(src, tgt) = 1/L * sum_l mean_i lambda_NCE * patchnce(F_l(G_enc,l(tgt)), F_l(G_enc,l(src)))_i

where the patch positions are drawn on the source features (keys) and reused for the generated
image (queries). FastCUT's flip equivariance flips the whole input batch horizontally with
probability 1/2 before G; the query features are flipped back so positions still correspond (the
fake shown to D is not flipped back, as in the reference). How the terms are weighted into loss_G,
and the adversarial term, are `cyclegan.parts.losses.cut`'s; the step's order is the method's.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from cyclegan.parts.nce.feature_taps import check_nce_layers, tap_features
from cyclegan.parts.nce.patch_sampler import PatchSampler
from cyclegan.parts.nce.patchnce import patch_nce_loss

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NCESettings:
    """What the PatchNCE terms need: the method's NCE knobs and the loss's NCE weight and switch."""

    nce_layers: tuple[int, ...]
    num_patches: int
    nce_T: float
    all_negatives_from_minibatch: bool
    lambda_NCE: float
    nce_idt: bool


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


def layer_nce(
    sampler: PatchSampler,
    feat_q: Sequence[torch.Tensor],
    feat_k: Sequence[torch.Tensor],
    settings: NCESettings,
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
        self, generator: nn.Module, sampler: PatchSampler | None, settings: NCESettings
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
        self._sizes_reported = False

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
            self._report_small_maps(feat_k)
            nce[f"loss_{name}"], ids[name] = layer_nce(
                self.F, feat_q, feat_k, s, rng, given.get(name)
            )
        return fake_B, idt_B, nce, ids

    def _report_small_maps(self, feats: Sequence[torch.Tensor]) -> None:
        """Say once which tapped maps have fewer positions than num_patches (they use all of
        theirs, the reference's rule), so a run at small crops states what it trained with."""
        if self._sizes_reported:
            return
        self._sizes_reported = True
        n = self.settings.num_patches
        small = [
            f"layer {layer}: {f.shape[2]}x{f.shape[3]}={f.shape[2] * f.shape[3]}"
            for layer, f in zip(self.layers, feats, strict=True)
            if f.shape[2] * f.shape[3] < n
        ]
        if small:
            log.info(
                "method.num_patches=%d: nce layers with fewer positions use all of them (%s)",
                n,
                ", ".join(small),
            )
