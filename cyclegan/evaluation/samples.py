"""Sample grids: fixed test images and their translations, one pair of rows per direction."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn
from torchvision.utils import save_image

from cyclegan.data.transforms import to_display_rgb, to_image_range


@torch.no_grad()
def sample_rows(
    translators: Mapping[str, nn.Module], images: Mapping[str, torch.Tensor], device: torch.device
) -> list[torch.Tensor]:
    """For each direction XY: the real X images, then G_XY of them (CycleGAN: real A, fake B,
    real B, fake A). Generators run in eval mode and get their mode back afterwards."""
    rows = []
    for direction, G in translators.items():
        real = images[direction[0]].to(device)
        was_training = G.training
        G.eval()
        try:
            rows += [real, G(real)]
        finally:
            G.train(was_training)
    return rows


def save_sample_grid(rows: list[torch.Tensor], path: Path) -> Path:
    """One PNG, a row per tensor, in display range [0, 1]; a grayscale row (one channel) is shown
    as gray RGB, so domains of 1 and 3 channels share a grid."""
    path.parent.mkdir(parents=True, exist_ok=True)
    grid = to_image_range(torch.cat([to_display_rgb(r) for r in rows])).cpu()
    save_image(grid, path, nrow=rows[0].shape[0], padding=2)
    return path
