"""Replay buffer of past generated images (Shrivastava et al. 2017), used by CycleGAN's discriminators.

Showing D a mix of current and older fakes keeps it from over-fitting to the generator's latest
output, which damps oscillation between the two.
"""

from __future__ import annotations

import torch


class ReplayBuffer:
    """Holds up to `max_size` past fakes; each query swaps new images in with probability 1/2.

    While the buffer is filling, every image is stored and returned as is. Once full, each image of
    the batch is, with probability `swap_prob`, exchanged for a random stored one (which is returned,
    the new one taking its place); otherwise it is returned unchanged. Randomness comes from the
    given `torch.Generator`, so a run is reproducible and the buffer can be checkpointed.
    """

    def __init__(
        self, max_size: int = 50, swap_prob: float = 0.5, generator: torch.Generator | None = None
    ) -> None:
        if max_size < 0:
            raise ValueError(f"replay buffer size must be >= 0, got {max_size}")
        self.max_size = max_size
        self.swap_prob = swap_prob
        self.generator = generator
        self.images: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self.images)

    def push_and_pop(self, batch: torch.Tensor) -> torch.Tensor:
        """Store the (detached) batch and return the images D should see, same shape as `batch`."""
        batch = batch.detach()
        if self.max_size == 0:
            return batch
        out = []
        for image in batch:  # (C, H, W)
            if len(self.images) < self.max_size:
                self.images.append(image.clone())
                out.append(image)
                continue
            draw = torch.rand((), generator=self.generator).item()
            if draw < self.swap_prob:
                i = int(torch.randint(self.max_size, (), generator=self.generator).item())
                out.append(self.images[i].clone())
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict[str, torch.Tensor | list[torch.Tensor] | int]:
        """Plain tensors only, so a checkpoint loads with torch.load(weights_only=True): one
        stacked tensor, or a list when the fakes differ in size (preprocess=scale_width or none
        keep each image's shape)."""
        same = all(img.shape == self.images[0].shape for img in self.images)
        images = torch.stack(self.images) if self.images and same else list(self.images)
        if not self.images:
            images = torch.empty(0)
        return {"images": images, "max_size": self.max_size}

    def load_state_dict(self, state: dict[str, torch.Tensor | list[torch.Tensor] | int]) -> None:
        images = state["images"]
        assert isinstance(images, torch.Tensor | list)
        empty = isinstance(images, torch.Tensor) and not images.numel()
        self.images = [] if empty else [img.clone() for img in images]
