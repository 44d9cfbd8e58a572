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


class DeviceReplayBuffer:
    """The same replay buffer with its state and its random choices on the images' device.

    `ReplayBuffer` decides image by image in Python, from draws of a CPU generator: that makes the
    GPU wait for nothing (the values read are host tensors), but each decision is a Python branch,
    which a CUDA graph or torch.compile would freeze at capture, and the work is one launch per
    image. Here the stored images are one preallocated tensor (max_size + 1, C, H, W) and the
    fill count a 0-d tensor, both on the device; each call draws a fixed number of random values
    on the device (one uniform `u_j` and one slot `r_j` per image, used or not) and applies the
    rule with a fixed sequence of tensor ops (`torch.where`, gathers, one `index_copy_`), so no
    value is read back to the host and the same kernels run at every call.

    The rule is the sequential one of `ReplayBuffer`, image by image in batch order, with n the
    fill count before image j:
        n < max_size:          store image j in slot n, return it
        otherwise, u_j < p:    return the image in slot r_j, store image j there
        otherwise:             return image j
    Two images of one batch may pick the same slot; then the later one gets the earlier one (as the
    loop would give it) and the slot keeps the later one. Given the same draws (u_j, r_j) the
    result equals `ReplayBuffer`'s exactly (tests/test_device_buffer.py). The draws themselves
    differ: `ReplayBuffer` draws u_j only once full and r_j only when it swaps, a number of draws
    known only after reading the outcomes, which a device-side rule cannot do without a sync. So
    from one generator state the two buffers agree while filling and then follow different (equally
    distributed) random streams; a checkpoint of either loads into the other.

    Fakes of several sizes (dataset.preprocess=scale_width or none keep each image's shape, at
    batch 1) cannot share one store: at the first fake of another size the buffer hands over, for
    good, to a per-image `ReplayBuffer` holding the same images (such runs cannot be replayed as
    CUDA graphs anyway); its generator state is saved with the images, so a resume stays exact.

    Row max_size of the store is scratch: images that are not the last writer of their slot are
    written there, so one fixed-shape `index_copy_` updates the store without duplicate targets.
    """

    def __init__(
        self,
        max_size: int = 50,
        swap_prob: float = 0.5,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        if max_size < 0:
            raise ValueError(f"replay buffer size must be >= 0, got {max_size}")
        if not 0.0 <= swap_prob <= 1.0:
            raise ValueError(f"replay buffer swap_prob must be in [0, 1], got {swap_prob}")
        self.device = torch.device(device)
        if generator is not None and not _same_device(generator.device, self.device):
            raise ValueError(
                f"the replay buffer's generator is on {generator.device} but its images are on "
                f"{self.device}; create it with torch.Generator(device={str(self.device)!r})"
            )
        self.max_size = max_size
        self.swap_prob = swap_prob
        # None: the device's default generator, which CUDA graphs capture without registration.
        self.generator = generator
        self.store: torch.Tensor | None = None  # (max_size + 1, C, H, W), allocated on first use
        self.count = torch.zeros((), dtype=torch.long, device=self.device)  # images held
        # Fakes of several sizes (dataset.preprocess=scale_width or none, batch 1) cannot share
        # one store: the buffer then hands over to a per-image ReplayBuffer for good.
        self.by_image: ReplayBuffer | None = None

    def __len__(self) -> int:
        """Images held; reads the count back from the device (not for use inside a step)."""
        return len(self.by_image) if self.by_image is not None else int(self.count)

    def push_and_pop(self, batch: torch.Tensor) -> torch.Tensor:
        """Store the (detached) batch and return the images D should see, same shape as `batch`."""
        batch = batch.detach()  # (B, C, H, W)
        if self.max_size == 0:
            return batch
        if batch.device != self.count.device:
            raise ValueError(
                f"replay buffer on {self.count.device} got images on {batch.device}; create it "
                f"with device={str(batch.device)!r}"
            )
        if self.store is not None and self.store.shape[1:] != batch.shape[1:]:
            self._hand_over_to_replay_buffer()
        if self.by_image is not None:
            return self.by_image.push_and_pop(batch)
        if self.store is None:
            self.store = batch.new_zeros((self.max_size + 1, *batch.shape[1:]))
        n = batch.shape[0]
        u = torch.rand(n, generator=self.generator, device=batch.device)
        r = torch.randint(self.max_size, (n,), generator=self.generator, device=batch.device)
        out, dest = replay_rule(self.store, self.count, batch, u, r, self.swap_prob)
        self.store.index_copy_(0, dest, batch)
        self.count.add_(n).clamp_(max=self.max_size)
        return out

    def _hand_over_to_replay_buffer(self, images: list[torch.Tensor] | None = None) -> None:
        """Continue as a per-image `ReplayBuffer` (with the images held so far), drawing from a
        CPU generator seeded once from this buffer's generator (one host read, once)."""
        seed = torch.randint(2**62, (1,), generator=self.generator, device=self.device)
        self.by_image = ReplayBuffer(
            self.max_size, self.swap_prob, torch.Generator().manual_seed(int(seed))
        )
        if images is None:
            n = int(self.count)
            images = list(self.store[:n]) if self.store is not None else []
        self.by_image.images = [img.clone() for img in images]
        self.store = None

    def state_dict(self) -> dict[str, torch.Tensor | list[torch.Tensor] | int]:
        """`ReplayBuffer`'s format: the held images in slot order (one host read of the count).
        After a hand-over, also the per-image buffer's generator state, for an exact resume."""
        if self.by_image is not None:
            assert self.by_image.generator is not None
            return {**self.by_image.state_dict(), "host_rng": self.by_image.generator.get_state()}
        n = len(self)
        images = self.store[:n].clone() if self.store is not None and n else torch.empty(0)
        return {"images": images, "max_size": self.max_size}

    def load_state_dict(self, state: dict[str, torch.Tensor | list[torch.Tensor] | int]) -> None:
        """Loads either buffer's state; images beyond `max_size` (a smaller buffer now) are dropped.
        Images of several sizes (a list) continue per image, as they were saved."""
        images = state["images"]
        self.by_image = None
        if isinstance(images, list) or "host_rng" in state:
            held = [img.to(self.device) for img in images][: self.max_size]
            self._hand_over_to_replay_buffer(held)
            assert self.by_image is not None and self.by_image.generator is not None
            if "host_rng" in state:
                self.by_image.generator.set_state(state["host_rng"])  # type: ignore[arg-type]
            return
        assert isinstance(images, torch.Tensor)
        n = min(images.shape[0], self.max_size) if images.numel() else 0
        if n == 0:
            self.store = None
            self.count.zero_()
            return
        self.store = images.new_zeros((self.max_size + 1, *images.shape[1:]), device=self.device)
        self.store[:n] = images[:n]
        self.count.fill_(n)


def replay_rule(
    store: torch.Tensor,
    count: torch.Tensor,
    batch: torch.Tensor,
    u: torch.Tensor,
    r: torch.Tensor,
    swap_prob: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`DeviceReplayBuffer`'s rule for given draws, without side effects: (returned images, rows).

    `store` (M + 1, C, H, W) with row M scratch, `count` a 0-d tensor <= M, `batch` (B, C, H, W),
    `u` (B,) uniforms and `r` (B,) slots in [0, M). Returns the images to hand to D and, per image,
    the store row it must be written to (M: scratch) so that `store.index_copy_(0, rows, batch)`
    leaves every slot holding its last writer.
    """
    M = store.shape[0] - 1
    j = torch.arange(batch.shape[0], device=batch.device)  # (B,)
    fills = count + j < M  # stored while the buffer fills
    swaps = ~fills & (u < swap_prob)
    slot = torch.where(fills, count + j, r)  # (B,) the slot each image reads and/or writes
    writes = fills | swaps
    # pair[j, k]: image k writes the slot image j uses. For a swapping j, the latest such k < j
    # put the image j must get; if there is none, it comes from the store.
    pair = (slot[:, None] == slot[None, :]) & writes[None, :]  # (B, B)
    earlier = pair & (j[None, :] < j[:, None])
    later = pair & (j[None, :] > j[:, None])
    has_earlier = earlier.any(dim=1)
    latest = torch.where(earlier, j[None, :], -1).amax(dim=1).clamp(min=0)  # (B,)
    previous = torch.where(_bcast(has_earlier, batch), batch[latest], store[slot])
    out = torch.where(_bcast(swaps, batch), previous, batch)
    last_writer = writes & ~later.any(dim=1)
    return out, torch.where(last_writer, slot, M)


def _bcast(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, 1, ...) to select whole images of `like`."""
    return mask.view(-1, *([1] * (like.dim() - 1)))


def _same_device(a: torch.device, b: torch.device) -> bool:
    """Equal devices, treating 'cuda' and 'cuda:<current>' as the same."""
    if a.type != b.type:
        return False
    return a.index is None or b.index is None or a.index == b.index
