"""The PatchNCE loss of CUT (Park et al., 2020, eq. 2-3), per patch, as its reference computes it.

For N = b*n query rows q_i (patches of the generated image) and key rows k_i (the same positions in
the source image), all L2-normalised, with temperature tau (``nce_T`` = 0.07):

    l_pos[i]    = q_i . k_i
    l_neg[i, j] = q_i . k_j   for the n keys j of the same image as i (default), or all N keys of the
                  minibatch (``all_negatives_from_minibatch``, the SinCUT setting);
                  the diagonal j = i is set to -10 (masked, not removed: it adds exp(-10/tau) ~ 0)
    loss_i      = -log( exp(l_pos[i]/tau) / (exp(l_pos[i]/tau) + sum_j exp(l_neg[i, j]/tau)) )

i.e. a (1 + n)-way cross-entropy with the positive as class 0. The keys are detached: gradients
reach the generator and sampler only through the queries. Returned per row (N,), not reduced.

`images` is the number of images the N rows come from (b, rows grouped batch-major). The reference
uses its configured ``batch_size`` here; passing the real count of the call keeps negatives within
each image even for a short last batch or a per-process DDP batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cyclegan.parts.nce.feature_taps import NCEConfigError

MASKED_LOGIT = -10.0  # the reference's value for the positive's own slot among the negatives


def patch_nce_loss(
    feat_q: torch.Tensor,
    feat_k: torch.Tensor,
    images: int,
    nce_T: float = 0.07,
    all_negatives_from_minibatch: bool = False,
) -> torch.Tensor:
    """Per-patch PatchNCE loss (N,) for queries and keys (N, d) from `images` images."""
    if feat_q.shape != feat_k.shape or feat_q.dim() != 2:
        raise NCEConfigError(
            f"feat_q {tuple(feat_q.shape)} and feat_k {tuple(feat_k.shape)} must be equal (N, d)"
        )
    n_rows, dim = feat_q.shape
    groups = 1 if all_negatives_from_minibatch else images
    if groups < 1 or n_rows % groups:
        raise NCEConfigError(f"{n_rows} patch rows cannot be split into {groups} images")
    feat_k = feat_k.detach()
    l_pos = torch.bmm(feat_q.view(n_rows, 1, dim), feat_k.view(n_rows, dim, 1)).view(n_rows, 1)
    q = feat_q.view(groups, -1, dim)
    k = feat_k.view(groups, -1, dim)
    per_group = q.shape[1]
    l_neg = torch.bmm(q, k.transpose(2, 1))  # (groups, n, n)
    diagonal = torch.eye(per_group, device=q.device, dtype=torch.bool)[None]
    l_neg = l_neg.masked_fill(diagonal, MASKED_LOGIT).view(-1, per_group)  # (N, n)
    logits = torch.cat((l_pos, l_neg), dim=1) / nce_T
    target = torch.zeros(n_rows, dtype=torch.long, device=q.device)
    return F.cross_entropy(logits, target, reduction="none")
