"""What a dataset option describes: one typed object, built by Hydra from `conf/dataset/*.yaml`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cyclegan.data.transforms import Preprocessing, parse_crop_size


@dataclass
class DatasetSpec:
    """A dataset folder and how its images are read; the builders in `cyclegan.data.builders` take it.

    No defaults here: the YAML files are the one source of them.
    `synthetic` is the built-in set's generator (`SyntheticLandscapes`), which renders the folder
    on first use; None for folders on disk. `paired_test`: testA/testB hold the same scenes under
    the same file names, so translations are scored against ground truth (PSNR/SSIM).
    """

    name: str
    root: str
    img_size: int  # the square crop when crop_size is null (and the built-in set's size)
    load_scale: float  # load_size = load_scale x the crop's longer side when load_size is null
    # How training images become samples: resize_and_crop | crop | scale_width |
    # scale_width_and_crop | none (cyclegan.data.transforms.Preprocess).
    preprocess: str
    load_size: int | None
    crop_size: str | int | None  # 256 or "HxW" such as "256x512"; null: img_size
    flip: bool
    channels_A: int  # 1 (grayscale) or 3 (RGB)
    channels_B: int
    download_name: str | None  # for `python -m cyclegan.data.download`, quoted when missing
    paired_test: bool
    synthetic: Any
    # Decode and resize every training image once and keep it in memory as uint8 (falls back to
    # reading files, with a warning, if that needs more than cache_max_gb).
    cache: bool
    cache_max_gb: float

    @property
    def path(self) -> Path:
        return Path(self.root)

    def preprocessing(self) -> Preprocessing:
        """The training preprocessing these keys describe (raises ValueError naming the key)."""
        return preprocessing_from_keys(
            self.preprocess,
            self.load_size,
            self.crop_size,
            self.flip,
            self.img_size,
            self.load_scale,
        )


def preprocessing_from_keys(
    preprocess: str,
    load_size: int | None,
    crop_size: str | int | None,
    flip: bool,
    img_size: int,
    load_scale: float,
) -> Preprocessing:
    """`dataset.*` keys -> Preprocessing. Null crop_size/load_size fall back to the older keys,
    so configs that only set img_size/load_scale keep their exact samples."""
    crop = parse_crop_size(crop_size if crop_size is not None else img_size)
    if load_size is None:
        load_size = int(max(crop) * load_scale)  # img_size * load_scale for a square crop
    return Preprocessing(preprocess, load_size, crop, flip)
