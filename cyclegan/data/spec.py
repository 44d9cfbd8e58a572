"""What a dataset option describes: one typed object, built by Hydra from `conf/dataset/*.yaml`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


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
    img_size: int  # training crop; images are first resized to load_scale * img_size
    load_scale: float
    flip: bool
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
