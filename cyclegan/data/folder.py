"""Image-folder datasets: unpaired A/B for training, one folder or name-paired A/B for evaluation.

The file layouts and decoding live in :mod:`cyclegan.data.images`, the training dataset in
:mod:`cyclegan.data.unpaired`; their names are re-exported here, where callers have always
imported them from.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from cyclegan.data.images import (
    IMG_EXTENSIONS,
    DatasetNotFoundError,
    PathLike,
    Transform,
    UnreadableImageError,
    check_channels,
    find_split_dirs,
    is_image_file,
    list_images,
    load_image,
    load_rgb,
)
from cyclegan.data.transforms import normalize_transform
from cyclegan.data.unpaired import UnpairedImageDataset

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
