"""Small stand-ins for the FID Inception network, for runs configured by Hydra in tests:
`trainer.feature_extractor={_target_:tests.extractors.ColourFeatures}` (no weights, no download)."""

from __future__ import annotations

import torch
from torch import nn


class ColourFeatures(nn.Module):
    """uint8 images (B, 3, H, W) -> their 4 x 4 average colours in [0, 1], (B, 48)."""

    num_features = 48

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.shape[1] != 3:
            raise ValueError(
                f"expected uint8 (B, 3, H, W), got {images.dtype} {tuple(images.shape)}"
            )
        return nn.functional.adaptive_avg_pool2d(images.float() / 255, 4).flatten(1)
