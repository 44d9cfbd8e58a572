"""Datasets and loaders for training and evaluation, from typed arguments (no config objects).

Order and augmentation are functions of (seed, epoch, index) (`EpochSampler`), so a resumed run sees
exactly the samples it would have seen, whatever the number of workers; under DDP each rank takes
its shard of that order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from cyclegan.data.folder import (
    ImageFolderDataset,
    PairedImageFolder,
    UnpairedImageDataset,
    find_split_dirs,
)
from cyclegan.data.sampling import EpochSampler
from cyclegan.data.spec import DatasetSpec
from cyclegan.data.transforms import Preprocessing

log = logging.getLogger(__name__)


def prepare_dataset(root: str | Path, synthetic: object | None = None) -> Path:
    """The dataset folder, rendering the built-in one (`synthetic`) on first use."""
    root = Path(root)
    if synthetic is not None:
        synthetic.prepare(root)  # type: ignore[attr-defined]
    return root


def build_train_loader(
    spec: DatasetSpec,
    root: Path,
    batch_size: int,
    num_workers: int,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
) -> DataLoader:
    """The shuffled, augmented unpaired training loader (this rank's shard of each epoch).

    Raises ValueError before training when the preprocessing keeps shapes that differ and
    `batch_size` > 1 (they could not be stacked into a batch).
    """
    data = UnpairedImageDataset(
        root,
        split="train",
        download_name=spec.download_name,
        seed=seed,
        cache=spec.cache,
        cache_max_gb=spec.cache_max_gb,
        preprocess=spec.preprocessing(),
        channels_A=spec.channels_A,
        channels_B=spec.channels_B,
    )
    data.check_batch_size(batch_size)
    return DataLoader(
        data,
        batch_size=batch_size,
        sampler=EpochSampler(len(data), seed=seed, rank=rank, world_size=world_size),
        num_workers=num_workers,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=num_workers > 0,
        drop_last=False,
        # Its own generator for the base seed every new iterator draws: drawn from the global RNG
        # it would shift a training step's random draws (dropout, the WGAN-GP interpolation)
        # whenever a resume starts a new iterator, and break exact resume.
        generator=torch.Generator().manual_seed(seed),
    )


def stack_images(
    dataset: Dataset, key: str | None = None, limit: int | None = None
) -> torch.Tensor:
    """The first `limit` items (all by default) of a dataset as one tensor (N, C, H, W)."""
    n = len(dataset) if limit is None else min(limit, len(dataset))  # type: ignore[arg-type]
    items = [dataset[i] for i in range(n)]
    return torch.stack([it[key] if key else it for it in items])


@dataclass
class TestImages:
    """Fixed test images of both domains, in [-1, 1]. On a paired test split A[i] and B[i] show the
    same scene, and `mean_A`/`mean_B` (the training sets' mean images) are the mean-image baseline."""

    A: torch.Tensor
    B: torch.Tensor
    paired: bool
    mean_A: torch.Tensor | None = None
    mean_B: torch.Tensor | None = None


def _test_dirs(root: Path) -> tuple[Path, Path]:
    try:
        return find_split_dirs(root, "test")
    except FileNotFoundError:
        log.warning("no 'test' split in '%s': evaluation and samples use the train split", root)
        return find_split_dirs(root, "train")


def load_test_images(
    root: Path,
    img_size: int | Preprocessing,
    paired: bool,
    limit: int | None = None,
    channels_A: int = 3,
    channels_B: int = 3,
) -> TestImages:
    """The test split (the train split if there is none), resized and centre-cropped.

    `img_size` is the square size, or the training `Preprocessing`, whose deterministic version
    (`Preprocessing.eval_transform`: its resize, a centre crop to crop_size) is used, so images of
    any shape stack. Each domain is read with its channel count. Paired splits are matched by file
    name and come with the training sets' mean images.
    """
    if isinstance(img_size, Preprocessing):
        transform = img_size.eval_transform()
    else:
        transform = Preprocessing.legacy(img_size).eval_transform()
    test_A_dir, test_B_dir = _test_dirs(root)
    if not paired:
        return TestImages(
            stack_images(ImageFolderDataset(test_A_dir, transform, channels_A), limit=limit),
            stack_images(ImageFolderDataset(test_B_dir, transform, channels_B), limit=limit),
            paired=False,
        )
    pairs = PairedImageFolder(test_A_dir, test_B_dir, transform, channels_A, channels_B)
    train_A_dir, train_B_dir = find_split_dirs(root, "train")
    mean_A = ImageFolderDataset(train_A_dir, transform, channels_A)
    mean_B = ImageFolderDataset(train_B_dir, transform, channels_B)
    return TestImages(
        stack_images(pairs, "A", limit),
        stack_images(pairs, "B", limit),
        paired=True,
        mean_A=stack_images(mean_A).mean(0, keepdim=True),
        mean_B=stack_images(mean_B).mean(0, keepdim=True),
    )


def synthetic_from_config(node: dict | None) -> object | None:
    """The built-in set's generator from a saved config's `dataset.synthetic` entry (inference
    tools rebuild a missing built-in dataset from a checkpoint without Hydra)."""
    if not node:
        return None
    from cyclegan.data.synthetic import SyntheticLandscapes

    return SyntheticLandscapes(**{k: v for k, v in node.items() if k != "_target_"})
