"""Unpaired (and paired, for evaluation) image-folder datasets.

Two on-disk layouts are accepted for a split such as ``train``:

* ``root/trainA`` + ``root/trainB`` (the official CycleGAN zips), and
* ``root/train/A`` + ``root/train/B``.

Every image is decoded by :func:`load_image` to 8-bit RGB or 8-bit grayscale (the domain's
``channels``, 3 or 1), whatever its mode on disk, so a stray grayscale, CMYK or 16-bit file does
not break batching halfway through training. A one-channel domain stays one channel: its images
are never expanded to RGB.
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
    Preprocess,
    Preprocessing,
    augment,
    normalize_transform,
)

__all__ = [
    "IMG_EXTENSIONS",
    "DatasetNotFoundError",
    "ImageFolderDataset",
    "PairedImageFolder",
    "UnpairedImageDataset",
    "UnreadableImageError",
    "check_channels",
    "find_split_dirs",
    "is_image_file",
    "list_images",
    "load_image",
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


def _sixteen_bit_to_gray(img: Image.Image) -> Image.Image:
    values = np.clip(np.asarray(img).astype(np.int64), 0, 65535)
    return Image.fromarray(((values * 255 + 32767) // 65535).astype(np.uint8), mode="L")


def _to_gray(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "L":
        return img
    if mode in ("LA", "La"):  # composite the gray values on white, without a detour via RGB
        la = np.asarray(img.convert("LA"), dtype=np.float32)
        gray, alpha = la[..., 0], la[..., 1] / 255.0
        out = gray * alpha + 255.0 * (1.0 - alpha)
        return Image.fromarray(np.round(out).astype(np.uint8), mode="L")
    if mode == "I" or mode.startswith("I;16"):
        return _sixteen_bit_to_gray(img)
    if mode in ("1", "P", "RGB", "F") and not (mode == "P" and "transparency" in img.info):
        return img.convert("L")  # RGB: ITU-R 601-2 luma, as torchvision's Grayscale
    # Colour with alpha (composited on white first), CMYK, YCbCr: via RGB, then luma.
    return _to_rgb(img).convert("L")


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


def check_channels(channels: int, key: str = "channels") -> int:
    """``channels`` if it is 1 (grayscale) or 3 (RGB); otherwise a one-line error naming ``key``."""
    if isinstance(channels, bool) or channels not in (1, 3):
        raise ValueError(f"{key}={channels!r}: use 1 (grayscale) or 3 (RGB)")
    return int(channels)


def load_rgb(path: PathLike) -> Image.Image:
    """Decode ``path`` to an 8-bit RGB image with EXIF orientation applied.

    Transparent pixels (RGBA, LA, palette with transparency) are composited onto white,
    i.e. the image looks as it does in a viewer, rather than exposing whatever colour the
    encoder left under alpha=0. 16-bit grayscale is rescaled (not clipped) to 8 bits.
    Raises UnreadableImageError naming the file if it cannot be decoded.
    """
    return load_image(path, 3)


def load_image(path: PathLike, channels: int = 3) -> Image.Image:
    """Decode ``path`` to 8-bit RGB (``channels=3``) or 8-bit grayscale ``L`` (``channels=1``).

    As :func:`load_rgb` (EXIF orientation, transparency on white, 16-bit rescaled), with colour
    images reduced to luma for one channel. A grayscale file read for one channel goes straight
    to ``L`` (16-bit rescaled directly), never through RGB.
    """
    convert = _to_rgb if check_channels(channels) == 3 else _to_gray
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()  # decode now, inside `with`, so truncation errors surface here
            try:
                oriented = ImageOps.exif_transpose(img)
            except Exception as exc:  # broken EXIF must not make a decodable image unusable
                logger.debug("ignoring unreadable EXIF in '%s': %s", path, exc)
                oriented = img.copy()
            converted = convert(oriented)
            if converted is img:  # never hand out the object whose file we are about to close
                converted = img.copy()
    except FileNotFoundError:
        raise
    except _DECODE_ERRORS as exc:
        raise UnreadableImageError(
            f"cannot read image '{path}': {exc}; replace or delete the file"
        ) from exc
    return converted


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
        if preprocess is not None and img_size is not None:
            raise ValueError(
                "pass either preprocess= or the older img_size=/load_scale=/flip=, not both"
            )
        if preprocess is None and img_size is not None:
            preprocess = Preprocessing.legacy(img_size, load_scale, flip)
        if cache and preprocess is None:
            raise ValueError(
                "cache=True needs the preprocessing (the training crop); pass preprocess= "
                "or img_size="
            )
        if cache and not cache_max_gb >= 0:
            raise ValueError(
                f"cache_max_gb must be >= 0, got {cache_max_gb!r}; fix dataset.cache_max_gb"
            )
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
                size = _oriented_size(path)
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
            size = _oriented_size(path)
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


# EXIF orientations 5-8 rotate by 90 degrees: the decoded image swaps width and height.
_EXIF_ORIENTATION = 0x0112


def _oriented_size(path: Path) -> tuple[int, int] | None:
    """(width, height) as decoded, with EXIF rotation applied; reads the header only."""
    try:
        with Image.open(path) as img:
            width, height = img.size
            orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
    except _DECODE_ERRORS:
        return None
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _resized_bytes(path: Path, preprocess: Preprocessing, channels: int) -> int:
    """uint8 bytes of ``path`` after the preprocessing's resize (reads the header only)."""
    size = _oriented_size(path)
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


class ImageFolderDataset(Dataset):
    """All images of one folder as tensors, e.g. for a domain's mean image or for inference.

    ``files[i]`` is the source of item ``i``. Unreadable files raise (no silent skipping).
    ``channels`` (3 or 1) decodes as RGB or grayscale.
    """

    def __init__(
        self, folder: PathLike, transform: Transform | None = None, channels: int = 3
    ) -> None:
        self.folder = Path(folder)
        self.channels = check_channels(channels)
        self.files: list[Path] = list_images(self.folder)
        self.transform: Transform = transform if transform is not None else normalize_transform()

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.transform(load_image(self.files[index], self.channels))


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
    ignored (logged once as a count). Items are ``{"A", "B", "name"}``; ``channels_A`` and
    ``channels_B`` (3 or 1) decode each side as RGB or grayscale.
    """

    def __init__(
        self,
        dir_A: PathLike,
        dir_B: PathLike,
        transform: Transform | None = None,
        channels_A: int = 3,
        channels_B: int = 3,
    ) -> None:
        self.channels_A = check_channels(channels_A, "channels_A")
        self.channels_B = check_channels(channels_B, "channels_B")
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
            "A": self.transform(load_image(path_a, self.channels_A)),
            "B": self.transform(load_image(path_b, self.channels_B)),
            "name": self.names[index],
        }
