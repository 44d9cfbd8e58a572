"""Running a generator over a stack of test images, the way every evaluation does it."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def translate_images(generator: nn.Module, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """G(images) in eval mode (restored after), in batches, on the CPU."""
    device = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    try:
        out = [generator(chunk.to(device)).float().cpu() for chunk in images.split(batch_size)]
    finally:
        generator.train(was_training)
    return torch.cat(out)
