"""The unpaired A/B training dataset: preprocessing, channels, the in-memory cache, skipped files."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from cyclegan.data.images import (
    PathLike,
    Transform,
    UnreadableImageError,
    check_channels,
    find_split_dirs,
    list_images,
    load_image,
    oriented_size,
)
from cyclegan.data.transforms import Preprocess, Preprocessing, augment, normalize_transform

__all__ = ["UnpairedImageDataset"]

logger = logging.getLogger(__name__)


class UnpairedImageDataset(Dataset):
    """Unpaired A/B images for CycleGAN training.

    ``A`` cycles through domain A in order; ``B`` is drawn uniformly at random from domain B,
    independently of A, so the pairing changes every epoch.

    Keys may be plain indices (randomness from torch's global generator) or ``(epoch, index)``
    pairs, as yielded by :class:`cyclegan.data.sampling.EpochSampler`: then the B draw and the
    random crop/flip come from a generator seeded by ``(seed, epoch, index)``, so a sample is the
    same whichever worker loads it and whenever, which is what makes resuming mid-epoch exact.

    ``preprocess`` (a :class:`~cyclegan.data.transforms.Preprocessing`) says how images are
    resized, cropped and mirrored; the older ``img_size``/``load_scale``/``flip`` arguments mean
    ``resize_and_crop`` with ``load_size = int(img_size * load_scale)``. A ``transform`` given by
    the caller replaces the file path's preprocessing (today's API); the cache always uses
    ``preprocess``. ``channels_A``/``channels_B`` (1 or 3) decode each domain as grayscale or
    RGB, and samples keep that channel count.

    A corrupt file does not stop training: it is logged once, recorded in ``skipped`` and
    replaced by the next readable image of the same domain. With ``num_workers > 0`` each
    worker keeps its own ``skipped`` set (and logs its own warning). In ``crop`` mode, which
    never resizes, images smaller than the crop are found from their headers here, before any
    training: each is logged on one line, recorded in ``skipped`` and left out of the domain.

    ``cache=True`` decodes every image once, here, applies the preprocessing's resize and keeps
    the result as a uint8 tensor, so an epoch costs a crop, a flip and a cast per image instead
    of a decode and a bicubic resize; ``transform`` is then unused. If the resized images would
    take more than ``cache_max_gb`` the cache is skipped with a warning (``cached`` says which
    path is active). Workers forked by a DataLoader share the cached tensors copy-on-write.
    """

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        transform: Transform | None = None,
        download_name: str | None = None,
        seed: int = 0,
        cache: bool = False,
        cache_max_gb: float = 4.0,
        img_size: int | None = None,
        load_scale: float = 1.12,
        flip: bool = True,
        *,
        preprocess: Preprocessing | None = None,
        channels_A: int = 3,
        channels_B: int = 3,
    ) -> None:
        self.channels = {
            "A": check_channels(channels_A, "channels_A"),
            "B": check_channels(channels_B, "channels_B"),
        }
        preprocess = _resolve_preprocessing(preprocess, img_size, load_scale, flip)
        _check_cache_arguments(cache, cache_max_gb, preprocess)
        self.root = Path(root)
        self.seed = seed
        self.split = split
        self.preprocess = preprocess
        self.img_size, self.flip = img_size, flip
        self.dir_A, self.dir_B = find_split_dirs(self.root, split, download_name=download_name)
        self.files_A: list[Path] = list_images(self.dir_A)
        self.files_B: list[Path] = list_images(self.dir_B)
        # The file path: the caller's transform, else the preprocessing, else only [-1, 1].
        self.transform: Transform = normalize_transform()
        if transform is not None:
            self.transform = transform
        elif preprocess is not None:
            self.transform = preprocess
        self.skipped: set[Path] = set()
        if preprocess is not None and preprocess.mode is Preprocess.crop:  # never resizes
            self.files_A = self._drop_too_small(self.files_A, self.dir_A)
            self.files_B = self._drop_too_small(self.files_B, self.dir_B)
        # Per domain, the resized uint8 image of each file (None: unreadable); None: no cache.
        self._cache: dict[str, list[torch.Tensor | None]] | None = None
        if cache:
            self._fill_cache(cache_max_gb)

    @property
    def cached(self) -> bool:
        """True when samples come from the in-memory uint8 cache."""
        return self._cache is not None

    def sample_sizes(self) -> dict[str, set[tuple[int, int]]]:
        """Per domain, the distinct ``(height, width)`` of its samples, from the file headers.

        One size per domain in the cropping modes; ``scale_width`` and ``none`` keep each image's
        aspect, so a folder of mixed shapes gives several. What :meth:`check_batch_size` uses.
        """
        spec = self.preprocess
        sizes: dict[str, set[tuple[int, int]]] = {}
        for domain, files, _ in self._domains():
            if spec is not None and spec.crops:
                sizes[domain] = {spec.crop_size}
                continue
            found = set()
            for path in files:
                size = oriented_size(path)
                if size is not None:
                    width, height = spec.resized_size(*size) if spec is not None else size
                    found.add((height, width))
            sizes[domain] = found
        return sizes

    def check_batch_size(self, batch_size: int) -> None:
        """Raise, before training, if batches of ``batch_size`` would mix sample sizes."""
        if batch_size <= 1:
            return
        for domain, sizes in self.sample_sizes().items():
            if len(sizes) > 1:
                shown = ", ".join(f"{h}x{w}" for h, w in sorted(sizes)[:4])
                mode = self.preprocess.mode.value if self.preprocess is not None else "none"
                raise ValueError(
                    f"dataset.preprocess={mode} keeps each image's shape and domain {domain} has "
                    f"{len(sizes)} sample sizes ({shown}{', ...' if len(sizes) > 4 else ''}), which "
                    f"cannot share a batch of {batch_size}; use trainer.batch_size=1 or a cropping "
                    "mode (resize_and_crop, crop, scale_width_and_crop)"
                )

    def _domains(self) -> tuple[tuple[str, list[Path], Path], ...]:
        return (("A", self.files_A, self.dir_A), ("B", self.files_B, self.dir_B))

    def _drop_too_small(self, files: list[Path], folder: Path) -> list[Path]:
        """The files the crop fits; each other one is logged on its own line and skipped."""
        assert self.preprocess is not None
        crop_h, crop_w = self.preprocess.crop_size
        kept = []
        for path in files:
            size = oriented_size(path)
            if size is None or self.preprocess.fits(*size):
                kept.append(path)  # an unreadable header is reported when the file is decoded
                continue
            self.skipped.add(path)
            logger.warning(
                "skipping '%s': %dx%d (HxW) is smaller than the %dx%d crop and "
                "dataset.preprocess=crop does not resize",
                path,
                size[1],
                size[0],
                crop_h,
                crop_w,
            )
        if not kept:
            raise UnreadableImageError(
                f"every image in '{folder}' is smaller than the {crop_h}x{crop_w} crop; lower "
                "dataset.crop_size or use dataset.preprocess=resize_and_crop"
            )
        if len(kept) < len(files):
            logger.warning(
                "skipped %d of %d images in '%s' as smaller than the crop",
                len(files) - len(kept),
                len(files),
                folder,
            )
        return kept

    def _fill_cache(self, max_gb: float) -> None:
        assert self.preprocess is not None
        need = sum(
            _resized_bytes(path, self.preprocess, self.channels[domain])
            for domain, files, _ in self._domains()
            for path in files
        )
        n_files = len(self.files_A) + len(self.files_B)
        if need > max_gb * 1e9:
            logger.warning(
                "not caching %d images: resized they need %.2f GB, over dataset.cache_max_gb=%g; "
                "raise it (or lower the load/crop size) to cache",
                n_files,
                need / 1e9,
                max_gb,
            )
            return
        cache: dict[str, list[torch.Tensor | None]] = {}
        for domain, files, folder in self._domains():
            images: list[torch.Tensor | None] = []
            for path in files:
                try:
                    image = load_image(path, self.channels[domain])
                    images.append(self.preprocess.load_uint8(image))
                except UnreadableImageError as exc:
                    self.skipped.add(path)
                    images.append(None)
                    logger.warning("skipping unreadable image (substituting the next one): %s", exc)
            if all(image is None for image in images):
                raise UnreadableImageError(
                    f"no readable images in '{folder}' ({len(images)} files failed to decode); "
                    "fix or replace the image files"
                )
            cache[domain] = images
        self._cache = cache
        logger.info("cached %d images in memory (%.1f MB uint8)", n_files, need / 1e6)

    def __len__(self) -> int:
        return max(len(self.files_A), len(self.files_B))

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        if isinstance(key, tuple):
            epoch, index = key
            self._check_index(index)
            sample_seed = int(
                np.random.SeedSequence([self.seed, epoch, index % len(self)]).generate_state(1)[0]
            )
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(sample_seed)
                return self._sample(index % len(self))
        self._check_index(key)
        return self._sample(key % len(self))

    def _check_index(self, index: int) -> None:
        n = len(self)
        if not -n <= index < n:
            # Needed so plain `for sample in dataset` terminates.
            raise IndexError(f"index {index} out of range for dataset of length {n}")

    def _sample(self, index: int) -> dict[str, torch.Tensor]:
        idx_b = int(torch.randint(len(self.files_B), (1,)).item())
        if self._cache is not None:
            # Same draws in the same order as the file path: B's index, A's crop/flip, B's.
            assert self.preprocess is not None
            img_a = _next_cached(self._cache["A"], index % len(self.files_A))
            img_b = _next_cached(self._cache["B"], idx_b)
            return {"A": augment(img_a, self.preprocess), "B": augment(img_b, self.preprocess)}
        img_a = self._load_readable("A", index % len(self.files_A))
        img_b = self._load_readable("B", idx_b)
        return {"A": self.transform(img_a), "B": self.transform(img_b)}

    def _load_readable(self, domain: str, start: int) -> Image.Image:
        """Load the domain's file ``start``, or the next readable file after it (wrapping)."""
        files, folder = (self.files_A, self.dir_A) if domain == "A" else (self.files_B, self.dir_B)
        for offset in range(len(files)):
            path = files[(start + offset) % len(files)]
            if path in self.skipped:
                continue
            try:
                return load_image(path, self.channels[domain])
            except UnreadableImageError as exc:
                self.skipped.add(path)
                logger.warning("skipping unreadable image (substituting the next one): %s", exc)
        raise UnreadableImageError(
            f"no readable images in '{folder}' ({len(files)} files failed to decode); "
            "fix or replace the image files"
        )


def _resolve_preprocessing(
    preprocess: Preprocessing | None, img_size: int | None, load_scale: float, flip: bool
) -> Preprocessing | None:
    """The typed preprocessing, or the one the older img_size/load_scale/flip arguments mean."""
    if preprocess is not None and img_size is not None:
        raise ValueError(
            "pass either preprocess= or the older img_size=/load_scale=/flip=, not both"
        )
    if preprocess is None and img_size is not None:
        return Preprocessing.legacy(img_size, load_scale, flip)
    return preprocess


def _check_cache_arguments(
    cache: bool, cache_max_gb: float, preprocess: Preprocessing | None
) -> None:
    if cache and preprocess is None:
        raise ValueError(
            "cache=True needs the preprocessing (the training crop); pass preprocess= or img_size="
        )
    if cache and not cache_max_gb >= 0:
        raise ValueError(
            f"cache_max_gb must be >= 0, got {cache_max_gb!r}; fix dataset.cache_max_gb"
        )


def _resized_bytes(path: Path, preprocess: Preprocessing, channels: int) -> int:
    """uint8 bytes of ``path`` after the preprocessing's resize (reads the header only)."""
    size = oriented_size(path)
    if size is None:
        return 0  # reported when the cache decodes it
    width, height = preprocess.resized_size(*size)
    return channels * width * height


def _next_cached(images: Sequence[torch.Tensor | None], start: int) -> torch.Tensor:
    """``images[start]``, or the next readable one after it (wrapping), as in the uncached path."""
    for offset in range(len(images)):
        image = images[(start + offset) % len(images)]
        if image is not None:
            return image
    raise AssertionError("unreachable: the cache holds at least one image per domain")
