"""Unpaired (and paired, for evaluation) image-folder datasets.

Two on-disk layouts are accepted for a split such as ``train``:

* ``root/trainA`` + ``root/trainB`` (the official CycleGAN zips), and
* ``root/train/A`` + ``root/train/B``.

Every image is decoded to 8-bit RGB by :func:`load_rgb`, whatever its mode on disk, so a
stray grayscale, CMYK or 16-bit file does not break batching halfway through training.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import Dataset

from cyclegan.data.transforms import (
    crop_flip_normalize,
    load_size,
    normalize_transform,
    resize_to_uint8,
)

__all__ = [
    "IMG_EXTENSIONS",
    "DatasetNotFoundError",
    "ImageFolderDataset",
    "PairedImageFolder",
    "UnpairedImageDataset",
    "UnreadableImageError",
    "find_split_dirs",
    "is_image_file",
    "list_images",
    "load_rgb",
]

logger = logging.getLogger(__name__)

_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
IMG_EXTENSIONS: frozenset[str] = frozenset(_EXTENSIONS)
_EXT_HINT = "/".join(_EXTENSIONS)

Transform = Callable[[Image.Image], Any]
PathLike = str | os.PathLike[str]

# Errors Pillow (and its format plugins) raise for a damaged file. FileNotFoundError is
# deliberately not converted: a missing file is a different problem from a corrupt one.
_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    struct.error,
    Image.DecompressionBombError,
)


class DatasetNotFoundError(FileNotFoundError):
    """A dataset root or split folder is missing; the message says how to get it."""


class UnreadableImageError(ValueError):
    """An image file exists but cannot be decoded (corrupt, truncated, unknown format)."""


def is_image_file(path: PathLike) -> bool:
    """True for non-hidden files with an image extension (case-insensitive)."""
    p = Path(path)
    return not p.name.startswith(".") and p.suffix.lower() in IMG_EXTENSIONS


def _layout_hint(root: Path, split: str) -> str:
    return (
        f"'{root / (split + 'A')}' + '{root / (split + 'B')}' "
        f"(or '{root / split / 'A'}' + '{root / split / 'B'}')"
    )


def find_split_dirs(
    root: PathLike, split: str, download_name: str | None = None
) -> tuple[Path, Path]:
    """Return the (domain A, domain B) folders of ``split``, accepting both common layouts.

    The official ``root/trainA`` layout wins if both are present.
    """
    root = Path(root)
    if not root.is_dir():
        if root.exists():
            raise DatasetNotFoundError(
                f"dataset path '{root}' is not a folder; point dataset.root at the dataset folder"
            )
        if download_name:
            parent = root.parent
            msg = (
                f"dataset folder '{root}' not found; download it with: "
                f"python -m cyclegan.data.download {download_name} --root {parent}"
            )
            if root.name != download_name:
                msg += f" (it is saved as '{parent / download_name}')"
            raise DatasetNotFoundError(msg)
        raise DatasetNotFoundError(
            f"dataset folder '{root}' not found; create {_layout_hint(root, split)} "
            "with your images"
        )

    candidates = (
        (root / f"{split}A", root / f"{split}B"),
        (root / split / "A", root / split / "B"),
    )
    for dir_a, dir_b in candidates:
        if dir_a.is_dir() and dir_b.is_dir():
            return dir_a, dir_b

    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    shown = ", ".join(found[:10]) + (", ..." if len(found) > 10 else "") if found else "none"
    raise DatasetNotFoundError(
        f"no '{split}' split in '{root}': expected folders {_layout_hint(root, split)}; "
        f"found subfolders: {shown}"
    )


def list_images(folder: PathLike) -> list[Path]:
    """All image files under ``folder`` (recursive), sorted by relative path for determinism.

    Non-image files, hidden files and hidden folders (``.git``, ``.ipynb_checkpoints``) are
    ignored.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetNotFoundError(f"image folder '{folder}' not found; check the dataset path")
    found: list[tuple[tuple[str, ...], Path]] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        base = Path(dirpath)
        for name in filenames:
            path = base / name
            if is_image_file(path):
                found.append((path.relative_to(folder).parts, path))
    if not found:
        raise DatasetNotFoundError(f"no images in '{folder}' (expected {_EXT_HINT} files)")
    found.sort(key=lambda item: item[0])
    return [path for _, path in found]


def _composite_on_white(img: Image.Image) -> Image.Image:
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _sixteen_bit_to_rgb(img: Image.Image) -> Image.Image:
    # Pillow's own I;16/I -> L conversion clips at 255 instead of rescaling, so scale
    # 0..65535 -> 0..255 with rounding (65535 -> 255, 32768 -> 128) ourselves.
    values = np.asarray(img).astype(np.int64)
    values = np.clip(values, 0, 65535)
    scaled = ((values * 255 + 32767) // 65535).astype(np.uint8)
    return Image.fromarray(scaled).convert("RGB")


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info):
        return _composite_on_white(img)
    if mode == "I" or mode.startswith("I;16"):
        return _sixteen_bit_to_rgb(img)
    # L, 1, P (opaque), CMYK, YCbCr, F: Pillow's conversion is correct (CMYK without ICC).
    return img.convert("RGB")


def load_rgb(path: PathLike) -> Image.Image:
    """Decode ``path`` to an 8-bit RGB image with EXIF orientation applied.

    Transparent pixels (RGBA, LA, palette with transparency) are composited onto white,
    i.e. the image looks as it does in a viewer, rather than exposing whatever colour the
    encoder left under alpha=0. 16-bit grayscale is rescaled (not clipped) to 8 bits.
    Raises UnreadableImageError naming the file if it cannot be decoded.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()  # decode now, inside `with`, so truncation errors surface here
            try:
                oriented = ImageOps.exif_transpose(img)
            except Exception as exc:  # broken EXIF must not make a decodable image unusable
                logger.debug("ignoring unreadable EXIF in '%s': %s", path, exc)
                oriented = img.copy()
            rgb = _to_rgb(oriented)
            if rgb is img:  # never hand out the object whose file we are about to close
                rgb = img.copy()
    except FileNotFoundError:
        raise
    except _DECODE_ERRORS as exc:
        raise UnreadableImageError(
            f"cannot read image '{path}': {exc}; replace or delete the file"
        ) from exc
    return rgb


class UnpairedImageDataset(Dataset):
    """Unpaired A/B images for CycleGAN training.

    ``A`` cycles through domain A in order; ``B`` is drawn uniformly at random from domain B,
    independently of A, so the pairing changes every epoch.

    Keys may be plain indices (randomness from torch's global generator) or ``(epoch, index)``
    pairs, as yielded by :class:`cyclegan.data.sampling.EpochSampler`: then the B draw and the
    random crop/flip come from a generator seeded by ``(seed, epoch, index)``, so a sample is the
    same whichever worker loads it and whenever, which is what makes resuming mid-epoch exact.

    A corrupt file does not stop training: it is logged once, recorded in ``skipped`` and
    replaced by the next readable image of the same domain. With ``num_workers > 0`` each
    worker keeps its own ``skipped`` set (and logs its own warning).

    ``cache=True`` (needs ``img_size``) decodes every image once, here, resizes its short side to
    ``load_size(img_size, load_scale)`` and keeps it as a uint8 tensor, so an epoch costs a
    crop, a flip and a cast per image instead of a decode and a bicubic resize; ``transform`` is
    then unused. If the resized images would take more than ``cache_max_gb`` the cache is
    skipped with a warning (``cached`` says which path is active). Workers forked by a
    DataLoader share the cached tensors copy-on-write.
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
    ) -> None:
        self.root = Path(root)
        self.seed = seed
        self.split = split
        self.dir_A, self.dir_B = find_split_dirs(self.root, split, download_name=download_name)
        self.files_A: list[Path] = list_images(self.dir_A)
        self.files_B: list[Path] = list_images(self.dir_B)
        self.transform: Transform = transform if transform is not None else normalize_transform()
        self.skipped: set[Path] = set()
        self.img_size, self.flip = img_size, flip
        # Per domain, the resized uint8 image of each file (None: unreadable); None: no cache.
        self._cache: dict[str, list[torch.Tensor | None]] | None = None
        if cache:
            if img_size is None:
                raise ValueError("cache=True needs img_size (the training crop); pass img_size=")
            if not cache_max_gb >= 0:
                raise ValueError(
                    f"cache_max_gb must be >= 0, got {cache_max_gb!r}; fix dataset.cache_max_gb"
                )
            self._fill_cache(load_size(img_size, load_scale), cache_max_gb)

    @property
    def cached(self) -> bool:
        """True when samples come from the in-memory uint8 cache."""
        return self._cache is not None

    def _fill_cache(self, short_side: int, max_gb: float) -> None:
        files = self.files_A + self.files_B
        need = sum(_resized_bytes(path, short_side) for path in files)
        if need > max_gb * 1e9:
            logger.warning(
                "not caching %d images: resized they need %.2f GB, over dataset.cache_max_gb=%g; "
                "raise it (or lower dataset.img_size) to cache",
                len(files),
                need / 1e9,
                max_gb,
            )
            return
        cache: dict[str, list[torch.Tensor | None]] = {}
        for domain, domain_files in (("A", self.files_A), ("B", self.files_B)):
            images: list[torch.Tensor | None] = []
            for path in domain_files:
                try:
                    images.append(resize_to_uint8(load_rgb(path), short_side))
                except UnreadableImageError as exc:
                    self.skipped.add(path)
                    images.append(None)
                    logger.warning("skipping unreadable image (substituting the next one): %s", exc)
            if all(image is None for image in images):
                folder = self.dir_A if domain == "A" else self.dir_B
                raise UnreadableImageError(
                    f"no readable images in '{folder}' ({len(images)} files failed to decode); "
                    "fix or replace the image files"
                )
            cache[domain] = images
        self._cache = cache
        logger.info("cached %d images in memory (%.1f MB uint8)", len(files), need / 1e6)

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
            # Same draws in the same order as the PIL path: B's index, A's crop/flip, B's.
            assert self.img_size is not None
            img_a = _next_cached(self._cache["A"], index % len(self.files_A))
            img_b = _next_cached(self._cache["B"], idx_b)
            return {
                "A": crop_flip_normalize(img_a, self.img_size, self.flip),
                "B": crop_flip_normalize(img_b, self.img_size, self.flip),
            }
        img_a = self._load_readable(self.files_A, index % len(self.files_A), self.dir_A)
        img_b = self._load_readable(self.files_B, idx_b, self.dir_B)
        return {"A": self.transform(img_a), "B": self.transform(img_b)}

    def _load_readable(self, files: Sequence[Path], start: int, folder: Path) -> Image.Image:
        """Load ``files[start]``, or the next readable file after it (wrapping around)."""
        for offset in range(len(files)):
            path = files[(start + offset) % len(files)]
            if path in self.skipped:
                continue
            try:
                return load_rgb(path)
            except UnreadableImageError as exc:
                self.skipped.add(path)
                logger.warning("skipping unreadable image (substituting the next one): %s", exc)
        raise UnreadableImageError(
            f"no readable images in '{folder}' ({len(files)} files failed to decode); "
            "fix or replace the image files"
        )


def _resized_bytes(path: Path, short_side: int) -> int:
    """uint8 RGB bytes of ``path`` once its short side is ``short_side`` (reads the header only)."""
    try:
        with Image.open(path) as img:
            width, height = img.size
    except _DECODE_ERRORS:
        return 0  # reported when the cache decodes it
    short, long = min(width, height), max(width, height)
    return 3 * short_side * int(short_side * long / max(short, 1))


def _next_cached(images: Sequence[torch.Tensor | None], start: int) -> torch.Tensor:
    """``images[start]``, or the next readable one after it (wrapping), as in the uncached path."""
    for offset in range(len(images)):
        image = images[(start + offset) % len(images)]
        if image is not None:
            return image
    raise AssertionError("unreachable: the cache holds at least one image per domain")


class ImageFolderDataset(Dataset):
    """All images of one folder as tensors, e.g. for a domain's mean image or for inference.

    ``files[i]`` is the source of item ``i``. Unreadable files raise (no silent skipping).
    """

    def __init__(self, folder: PathLike, transform: Transform | None = None) -> None:
        self.folder = Path(folder)
        self.files: list[Path] = list_images(self.folder)
        self.transform: Transform = transform if transform is not None else normalize_transform()

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.transform(load_rgb(self.files[index]))


def _keyed_images(folder: Path) -> dict[str, Path]:
    """Map 'relative/path/without_suffix' -> file, so x.png in A can pair with x.jpg in B."""
    keyed: dict[str, Path] = {}
    for path in list_images(folder):
        key = path.relative_to(folder).with_suffix("").as_posix()
        if key in keyed:
            raise ValueError(
                f"'{keyed[key]}' and '{path}' both pair under the name '{key}'; "
                "rename or remove one of them"
            )
        keyed[key] = path
    return keyed


class PairedImageFolder(Dataset):
    """Aligned A/B images (e.g. ``testA``/``testB`` with ground truth), paired by file name.

    Files are matched by relative path without extension; files present on only one side are
    ignored (logged once as a count). Items are ``{"A", "B", "name"}``.
    """

    def __init__(
        self, dir_A: PathLike, dir_B: PathLike, transform: Transform | None = None
    ) -> None:
        self.dir_A, self.dir_B = Path(dir_A), Path(dir_B)
        keyed_a, keyed_b = _keyed_images(self.dir_A), _keyed_images(self.dir_B)
        self.names: list[str] = sorted(keyed_a.keys() & keyed_b.keys())
        if not self.names:
            raise ValueError(
                f"no file names in common between '{self.dir_A}' and '{self.dir_B}'; "
                "paired evaluation needs the same names (e.g. 001.png) on both sides"
            )
        self.pairs: list[tuple[Path, Path]] = [(keyed_a[k], keyed_b[k]) for k in self.names]
        self.unmatched_A = len(keyed_a) - len(self.names)
        self.unmatched_B = len(keyed_b) - len(self.names)
        if self.unmatched_A or self.unmatched_B:
            logger.warning(
                "ignoring unpaired files: %d only in '%s', %d only in '%s'",
                self.unmatched_A,
                self.dir_A,
                self.unmatched_B,
                self.dir_B,
            )
        self.transform: Transform = transform if transform is not None else normalize_transform()

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path_a, path_b = self.pairs[index]
        return {
            "A": self.transform(load_rgb(path_a)),
            "B": self.transform(load_rgb(path_b)),
            "name": self.names[index],
        }
