"""Finding and decoding image files: dataset layouts, listing, and 8-bit RGB or grayscale decoding.

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

__all__ = [
    "IMG_EXTENSIONS",
    "DatasetNotFoundError",
    "UnreadableImageError",
    "check_channels",
    "find_split_dirs",
    "is_image_file",
    "list_images",
    "load_image",
    "load_rgb",
    "oriented_size",
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


# EXIF orientations 5-8 rotate by 90 degrees: the decoded image swaps width and height.
_EXIF_ORIENTATION = 0x0112


def oriented_size(path: Path) -> tuple[int, int] | None:
    """(width, height) as decoded, with EXIF rotation applied; reads the header only."""
    try:
        with Image.open(path) as img:
            width, height = img.size
            orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
    except _DECODE_ERRORS:
        return None
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)
