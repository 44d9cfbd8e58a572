"""Training images kept on the GPU as uint8, cropped, mirrored and normalised there.

With `dataset.cache=true` the images are decoded and resized once; what is left per sample is a
crop, a mirror and a cast. Done by a DataLoader on the host, each batch is then copied to the GPU
(B x 3 x S x S floats, 6 MB at 256 px and batch 8). Here the resized uint8 images are moved to the
device once (0.5-1.8 GB for the usual 256 px datasets, a quarter of their float size) and a batch
is one gather from them: the host only draws the few integers of each sample (which image, where
to crop, whether to mirror) and sends them as one small (B, 2, 4) tensor.

The draws are the dataset's own: `sample_draws` replays `UnpairedImageDataset.__getitem__` for
a key `(epoch, index)` of `EpochSampler` (the same per-sample seed from (seed, epoch, index), the
same calls in the same order: B's index, A's crop and mirror, B's), so this path gives the same
pixels as the host path (tests/test_device_cache.py compares them bit for bit on the CPU), a
resumed run skips the same keys, and DDP ranks shard the same order.

A sample's crop of the flat pixel array, for image i of C x H_i x W_i stored from offset o_i,
crop top t, left l, size S, mirror m:
    out[c, y, x] = pixels[o_i + c H_i W_i + (t + y) W_i + (l + (S - 1 - x if m else x))]
then (out / 255 - 0.5) / 0.5 as `augment` computes it. Cropping preprocess modes only
(resize_and_crop, crop, scale_width_and_crop): the others keep each image's shape.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from cyclegan.data.sampling import EpochSampler
from cyclegan.data.transforms import Preprocessing
from cyclegan.data.unpaired import UnpairedImageDataset

# Per sample and domain: image index, crop top, crop left, mirror (0/1).
DRAW_FIELDS = 4


class DeviceImageCache:
    """One domain's images, each (C, H_i, W_i) uint8, concatenated into one flat device tensor.

    Images may differ in size (the short side is fixed, the long side follows the aspect ratio);
    None marks an unreadable file, replaced, as in the dataset, by the next readable image.
    """

    def __init__(self, images: Sequence[torch.Tensor | None], device: torch.device | str) -> None:
        readable = [img for img in images if img is not None]
        if not readable:
            raise ValueError(
                f"no readable images among {len(images)} to cache; fix or replace the image files"
            )
        channels = {img.shape[0] for img in readable}
        if len(channels) != 1 or any(img.dim() != 3 for img in readable):
            raise ValueError(
                f"cached images must be (C, H, W) with one channel count per domain, got "
                f"channel counts {sorted(channels)}"
            )
        if any(img.dtype != torch.uint8 for img in readable):
            raise ValueError("cached images must be uint8 (as resize_to_uint8 returns them)")
        self.channels = channels.pop()
        # remap[i]: the image that stands for file i (itself, or the next readable one).
        self.remap = [_next_readable(images, i) for i in range(len(images))]
        heights = [img.shape[1] for img in readable]
        widths = [img.shape[2] for img in readable]
        sizes = [img.numel() for img in readable]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).tolist()
        # Position in `readable` of each image index: unreadable slots never get looked up.
        position, k = [], 0
        for img in images:
            position.append(k)
            k += img is not None
        self._position = position
        self.heights, self.widths = heights, widths  # host copies, for the crop draws
        self.device = torch.device(device)
        self.pixels = torch.cat([img.reshape(-1) for img in readable]).to(self.device)
        self._position_on_device = torch.tensor(position, dtype=torch.long, device=self.device)
        # (N, 3): offset, height, width per readable image, on the device for the gather.
        self.layout = torch.tensor(
            list(zip(offsets, heights, widths, strict=True)), dtype=torch.long, device=self.device
        )

    def __len__(self) -> int:
        return len(self.remap)

    @property
    def nbytes(self) -> int:
        return self.pixels.numel()

    def size_of(self, index: int) -> tuple[int, int]:
        """(H, W) of the image that file `index` reads as."""
        k = self._position[self.remap[index]]
        return self.heights[k], self.widths[k]

    def crop(self, draws: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """(B, C, height, width) uint8 crops for `draws` (B, 4): image, top, left, mirror.

        One gather; no value goes back to the host. Image indices are file indices (remapped on
        the host by `sample_draws`, so they already point at readable images).
        """
        position = self._position_on_device[draws[:, 0]]  # (B,)
        offset, h, w = self.layout[position].unbind(1)  # (B,) each
        top, left, mirror = draws[:, 1], draws[:, 2], draws[:, 3].bool()
        c = torch.arange(self.channels, device=self.device).view(1, -1, 1, 1)
        y = torch.arange(height, device=self.device).view(1, 1, -1, 1)
        x = torch.arange(width, device=self.device).view(1, 1, 1, -1)
        col = torch.where(mirror.view(-1, 1, 1, 1), width - 1 - x, x) + left.view(-1, 1, 1, 1)
        row = y + top.view(-1, 1, 1, 1)
        hw = (h * w).view(-1, 1, 1, 1)
        flat = offset.view(-1, 1, 1, 1) + c * hw + row * w.view(-1, 1, 1, 1) + col
        return self.pixels[flat]  # (B, C, height, width)


def _next_readable(images: Sequence[torch.Tensor | None], start: int) -> int:
    for offset in range(len(images)):
        index = (start + offset) % len(images)
        if images[index] is not None:
            return index
    raise AssertionError("unreachable: at least one image is readable")


def normalize_uint8(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1], the arithmetic of `augment` (bit-identical)."""
    return images.to(torch.float32).div(255).sub(0.5).div(0.5)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The per-sample seed of `UnpairedImageDataset` for a key (epoch, index)."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])


def sample_draws(
    cache_A: DeviceImageCache,
    cache_B: DeviceImageCache,
    seed: int,
    epoch: int,
    index: int,
    crop_size: tuple[int, int],
    flip: bool,
) -> list[list[int]]:
    """[[image, top, left, mirror] for A, the same for B]: the dataset's draws for (epoch, index).

    Mirrors `UnpairedImageDataset._sample` on its cache path: index % n picks A (n = the larger
    domain), B is `randint(len(B))`; then `augment` draws top, left (only when the image is not
    already the crop's size) and the mirror (only with flip), for A and then for B.
    """
    n = max(len(cache_A), len(cache_B))
    g = torch.Generator().manual_seed(sample_seed(seed, epoch, index % n))
    index_B = int(torch.randint(len(cache_B), (1,), generator=g))
    crop_h, crop_w = crop_size
    out = []
    for cache, i in ((cache_A, (index % n) % len(cache_A)), (cache_B, index_B)):
        i = cache.remap[i]
        height, width = cache.size_of(i)
        top = left = 0
        if (height, width) != (crop_h, crop_w):
            top = int(torch.randint(0, height - crop_h + 1, size=(1,), generator=g))
            left = int(torch.randint(0, width - crop_w + 1, size=(1,), generator=g))
        mirror = int(flip and float(torch.rand(1, generator=g)) < 0.5)
        out.append([i, top, left, mirror])
    return out


class DeviceBatches:
    """Batches {"A", "B"} of (B, C, S, S) float images in [-1, 1], made on the device.

    Stands in for the training DataLoader: iterates `sampler` (an `EpochSampler`, whose
    `set_epoch(epoch, start)` the loop already calls) in batches of `batch_size`, the last one
    possibly smaller (`drop_last=False`, as the loader). Exposes `sampler` and `batch_size` as the
    DataLoader does, so the loop's epoch and resume arithmetic is unchanged.
    """

    @classmethod
    def from_dataset(
        cls,
        dataset: UnpairedImageDataset,
        sampler: EpochSampler,
        batch_size: int,
        device: torch.device | str,
        memory_format: torch.memory_format = torch.contiguous_format,
    ) -> DeviceBatches:
        """Move a dataset's uint8 cache (`dataset.cache=true`) to `device` once."""
        cached = dataset._cache  # the per-domain uint8 images (None: unreadable file)
        if cached is None or dataset.preprocess is None:
            raise ValueError(
                "trainer.device_cache=true needs the dataset's image cache: set "
                "dataset.cache=true (and raise dataset.cache_max_gb if the cache was skipped)"
            )
        batches = cls(
            DeviceImageCache(cached["A"], device),
            DeviceImageCache(cached["B"], device),
            sampler,
            batch_size,
            dataset.preprocess,
            dataset.seed,
            memory_format,
        )
        batches.dataset = dataset  # what the run's summary reads (skipped images)
        return batches

    def __init__(
        self,
        cache_A: DeviceImageCache,
        cache_B: DeviceImageCache,
        sampler: EpochSampler,
        batch_size: int,
        preprocess: Preprocessing,
        seed: int = 0,
        memory_format: torch.memory_format = torch.contiguous_format,
    ) -> None:
        if not preprocess.crops:
            raise ValueError(
                f"trainer.device_cache=true needs samples of one size: dataset.preprocess="
                f"{preprocess.mode.value} keeps each image's shape; use resize_and_crop, crop or "
                "scale_width_and_crop"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}; fix trainer.batch_size")
        if cache_A.device != cache_B.device:
            raise ValueError(f"domains cached on {cache_A.device} and {cache_B.device}")
        crop_h, crop_w = preprocess.crop_size
        for name, cache in (("A", cache_A), ("B", cache_B)):
            small = [
                i
                for i in range(len(cache))
                if cache.size_of(i)[0] < crop_h or cache.size_of(i)[1] < crop_w
            ]
            if small:
                h, w = cache.size_of(small[0])
                raise ValueError(
                    f"cached image {small[0]} of domain {name} is {h}x{w}, smaller than the "
                    f"{crop_h}x{crop_w} crop; lower dataset.crop_size"
                )
        if sampler.n != max(len(cache_A), len(cache_B)):
            raise ValueError(
                f"the sampler draws from {sampler.n} samples but the caches hold "
                f"{len(cache_A)} and {len(cache_B)} images; build it with EpochSampler(max(...))"
            )
        self.cache_A, self.cache_B = cache_A, cache_B
        self.sampler = sampler
        self.batch_size = batch_size
        self.crop_size, self.flip, self.seed = preprocess.crop_size, preprocess.flip, seed
        self.memory_format = memory_format
        self.device = cache_A.device
        self.dataset: UnpairedImageDataset | None = None

    def __len__(self) -> int:
        return -(-len(self.sampler) // self.batch_size)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        keys = list(self.sampler)
        for start in range(0, len(keys), self.batch_size):
            yield self.batch(keys[start : start + self.batch_size])

    def batch(self, keys: Sequence[tuple[int, int]]) -> dict[str, torch.Tensor]:
        """The batch of the given (epoch, index) keys: host draws, one copy, gathers on device."""
        draws = torch.tensor(
            [
                sample_draws(self.cache_A, self.cache_B, self.seed, e, i, self.crop_size, self.flip)
                for e, i in keys
            ],
            dtype=torch.long,
        )  # (B, 2, 4)
        if self.device.type == "cuda":
            # Pinned, so the copy is asynchronous; the caching host allocator keeps the page
            # until the copy has run, so the next batch cannot overwrite it in flight.
            draws = draws.pin_memory()
        draws = draws.to(self.device, non_blocking=True)
        crop_h, crop_w = self.crop_size
        return {
            name: normalize_uint8(cache.crop(draws[:, d], crop_h, crop_w)).contiguous(
                memory_format=self.memory_format
            )
            for d, (name, cache) in enumerate((("A", self.cache_A), ("B", self.cache_B)))
        }
