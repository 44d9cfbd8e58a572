"""CUT's patch sampler ``PatchSampleF``: pick patch positions, embed them with a small MLP, L2-normalise.

For each tapped feature map f_l (B, C_l, H_l, W_l) it takes n positions (the same n for every image
of the batch), gathers their C_l-vectors batch-major into a (B*n, C_l) matrix (all n patches of
image 0, then image 1, ...), maps each row through the head of that layer,

    z = W2 relu(W1 v + b1) + b2,        W1: (nc, C_l), W2: (nc, nc)

and returns z / (||z||_2 + 1e-7) (the 1e-7 is added to the norm, as in the reference). The
positions are drawn once on the source image's features and passed back in for the generated
image's, so row i of the query and key matrices is the same location.

Departures from the reference (taesungp/contrastive-unpaired-translation), both on purpose:

* the heads are built **eagerly** from the generator's channel counts, so the module has all its
  parameters before the first forward: the optimizer, DDP and checkpoint loading see them at once
  (the reference builds them in the first forward, which is why it needs a
  ``data_dependent_initialize`` step and cannot load a checkpoint into a fresh module);
* positions come from `torch.randperm` with a `torch.Generator` the caller owns and checkpoints,
  so resumed training draws the same patches (the reference draws from NumPy's global RNG).
  Positions are indices into the row-major flattening h * W + w, as in the reference.

The state dict keys (``mlp_<l>.0.weight``, ``mlp_<l>.2.bias``, ...) are the reference's, so its
``net_F`` checkpoints load with ``strict=True``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cyclegan.parts.nce.feature_taps import NCEConfigError

NORM_EPS = 1e-7  # added to the L2 norm (not under the square root), as the reference does


def l2_normalize(x: torch.Tensor) -> torch.Tensor:
    """Rows of `x` divided by (their Euclidean norm + 1e-7)."""
    norm = x.pow(2).sum(1, keepdim=True).pow(0.5)
    return x.div(norm + NORM_EPS)


def draw_patch_ids(
    shapes: Sequence[tuple[int, int]], num_patches: int, generator: torch.Generator
) -> list[torch.Tensor]:
    """For each (H, W), the first min(num_patches, H*W) entries of a random permutation of
    0..H*W-1: a map with fewer positions than num_patches gives all of them, in random order (the
    reference's rule). One draw per layer, in layer order, from `generator` (on the CPU, so the
    ids do not depend on the device the features live on). Positions are distinct within a layer.
    """
    return [torch.randperm(h * w, generator=generator)[:num_patches] for h, w in shapes]


def ids_on(ids: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The ids on `device`. CPU -> CUDA goes through pinned memory without blocking: a copy from
    ordinary (pageable) memory would make the host wait for the GPU's queued work every step."""
    if ids.device == device:
        return ids
    if device.type == "cuda" and ids.device.type == "cpu":
        return ids.pin_memory().to(device, non_blocking=True)
    return ids.to(device)


class PatchSampler(nn.Module):
    """Per-layer Linear-ReLU-Linear heads (``mlp_<l>``), built at construction from channel counts."""

    def __init__(self, in_channels: Sequence[int], nc: int = 256) -> None:
        super().__init__()
        if not in_channels:
            raise NCEConfigError("the patch sampler needs at least one feature layer")
        if nc < 1:
            raise NCEConfigError(f"netF_nc must be >= 1, got {nc}")
        self.in_channels = tuple(int(c) for c in in_channels)
        self.nc = nc
        for i, c in enumerate(self.in_channels):
            head = nn.Sequential(nn.Linear(c, nc), nn.ReLU(), nn.Linear(nc, nc))
            self.add_module(f"mlp_{i}", head)

    def heads(self) -> list[nn.Module]:
        return [getattr(self, f"mlp_{i}") for i in range(len(self.in_channels))]

    def forward(
        self,
        feats: Sequence[torch.Tensor],
        num_patches: int,
        patch_ids: Sequence[torch.Tensor] | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Embedded patches per layer, (B*n, nc) each, and the position ids used (n,) per layer.

        Give `patch_ids` (the key side's) to reuse positions, else `generator` to draw new ones.
        """
        if len(feats) != len(self.in_channels):
            raise NCEConfigError(
                f"got {len(feats)} feature maps for a sampler built for {len(self.in_channels)} "
                "layers; build it from the same nce_layers as the generator taps"
            )
        if patch_ids is None:
            if generator is None:
                raise ValueError("give patch_ids to reuse or a torch.Generator to draw them from")
            patch_ids = draw_patch_ids([tuple(f.shape[2:]) for f in feats], num_patches, generator)
        out = []
        for f, ids, head in zip(feats, patch_ids, self.heads(), strict=True):
            flat = f.permute(0, 2, 3, 1).flatten(1, 2)  # (B, H*W, C)
            picked = flat[:, ids_on(ids, f.device), :].flatten(0, 1)  # (B*n, C), batch-major
            out.append(l2_normalize(head(picked)))
        return out, list(patch_ids)
