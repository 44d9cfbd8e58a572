"""The in-memory uint8 cache of UnpairedImageDataset (dataset.cache) and its tensor augmentation."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image
from torch.utils.data import DataLoader

from cyclegan.data.builders import build_train_loader
from cyclegan.data.folder import UnpairedImageDataset, UnreadableImageError
from cyclegan.data.sampling import EpochSampler
from cyclegan.data.transforms import (
    crop_flip_normalize,
    load_size,
    resize_to_uint8,
    train_transform,
)

IMG, SCALE = 16, 1.12  # resized short side: 17, so every crop has 2 offsets per axis


def noise_image(path: Path, seed: int, size: tuple[int, int]) -> Path:
    """Random pixels, so any mismatch in crop offset or flip changes the values."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def make_dataset(root: Path, n_a: int = 3, n_b: int = 4) -> Path:
    for i in range(n_a):
        noise_image(root / "trainA" / f"{i}.png", i, (20 + i, 18))  # landscape, varied widths
    for i in range(n_b):
        noise_image(root / "trainB" / f"{i}.png", 100 + i, (18, 24))  # portrait
    return root


def dataset(root: Path, cache: bool, **kwargs) -> UnpairedImageDataset:
    return UnpairedImageDataset(
        root,
        transform=train_transform(IMG, SCALE),
        seed=3,
        cache=cache,
        img_size=IMG,
        load_scale=SCALE,
        **kwargs,
    )


def test_cached_samples_are_reproducible_and_match_the_file_path(tmp_path: Path) -> None:
    root = make_dataset(tmp_path)
    cached, plain = dataset(root, cache=True), dataset(root, cache=False)
    assert cached.cached and not plain.cached
    for key in [(0, 0), (0, 2), (1, 0), (5, 3)]:
        first, again, from_files = cached[key], cached[key], plain[key]
        for side in "AB":
            assert first[side].dtype == torch.float32
            assert first[side].shape == from_files[side].shape == (3, IMG, IMG)
            assert torch.equal(first[side], again[side])
            assert first[side].min() >= -1.0 and first[side].max() <= 1.0
            # Same draws in the same order, same resize, same arithmetic: the same pixels.
            assert torch.equal(first[side], from_files[side])
    # Different keys give different crops/pairings (the randomness is really used).
    assert not torch.equal(cached[(0, 0)]["A"], cached[(1, 0)]["A"])


def test_cached_sample_is_the_drawn_crop_of_the_flipped_resized_image(tmp_path: Path) -> None:
    path = noise_image(tmp_path / "x.png", 7, (30, 20))
    resized = resize_to_uint8(Image.open(path).convert("RGB"), load_size(IMG, SCALE))
    _, h, w = resized.shape
    assert (h, w) == (17, int(17 * 30 / 20))
    seen_flips = set()
    for seed in range(12):
        torch.manual_seed(seed)
        out = crop_flip_normalize(resized, IMG, flip=True)
        torch.manual_seed(seed)
        top = int(torch.randint(0, h - IMG + 1, (1,)).item())
        left = int(torch.randint(0, w - IMG + 1, (1,)).item())
        flipped = bool(torch.rand(1).item() < 0.5)
        seen_flips.add(flipped)
        # Mirroring the whole image then cropping at the mirrored offset is the same operation.
        source = resized.flip(-1) if flipped else resized
        left_in_source = w - IMG - left if flipped else left
        crop = source[:, top : top + IMG, left_in_source : left_in_source + IMG]
        assert torch.equal(out, (crop.float() / 255 - 0.5) / 0.5)
    assert seen_flips == {True, False}


def test_flip_false_never_mirrors_and_exact_fit_draws_nothing(tmp_path: Path) -> None:
    image = torch.arange(3 * IMG * IMG, dtype=torch.int64).remainder(256).to(torch.uint8)
    image = image.reshape(3, IMG, IMG)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    out = crop_flip_normalize(image, IMG, flip=False)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(out, image.float().div(255).sub(0.5).div(0.5))
    with pytest.raises(ValueError, match="load_scale"):
        crop_flip_normalize(image, IMG + 1)


def test_unreadable_files_are_skipped_and_substituted_at_cache_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = make_dataset(tmp_path)
    bad = root / "trainA" / "1.png"
    bad.write_bytes(b"not a png")
    with caplog.at_level(logging.WARNING):
        ds = dataset(root, cache=True)
    assert ds.cached and ds.skipped == {bad}
    assert "1.png" in caplog.text
    # Index 1 of A falls through to file 2, exactly as the uncached path substitutes it.
    plain = dataset(root, cache=False)
    assert torch.equal(ds[(0, 1)]["A"], plain[(0, 1)]["A"])
    assert plain.skipped == {bad}
    for path in (root / "trainA").iterdir():
        path.write_bytes(b"junk")
    with pytest.raises(UnreadableImageError, match="no readable images"):
        dataset(root, cache=True)


def test_over_the_memory_limit_falls_back_to_files_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = make_dataset(tmp_path)
    with caplog.at_level(logging.WARNING):
        ds = dataset(root, cache=True, cache_max_gb=1e-6)  # 1 kB; the set needs ~7 kB
    assert not ds.cached
    assert "cache_max_gb" in caplog.text
    assert ds[(0, 0)]["A"].shape == (3, IMG, IMG)  # still trains, from the files


def test_bad_cache_arguments_fail_clearly(tmp_path: Path) -> None:
    root = make_dataset(tmp_path)
    with pytest.raises(ValueError, match="img_size"):
        UnpairedImageDataset(root, cache=True)
    with pytest.raises(ValueError, match="cache_max_gb"):
        dataset(root, cache=True, cache_max_gb=-1.0)


def test_workers_deliver_the_same_cached_batches_as_the_main_process(tmp_path: Path) -> None:
    ds = dataset(make_dataset(tmp_path), cache=True)

    def batches(workers: int) -> list[torch.Tensor]:
        loader = DataLoader(
            ds, batch_size=2, sampler=EpochSampler(len(ds), seed=1), num_workers=workers
        )
        return [b["A"] for b in loader] + [b["B"] for b in loader]

    for a, b in zip(batches(0), batches(2), strict=True):
        assert torch.equal(a, b)


def test_config_switches_the_training_loader_to_the_cache(compose_cfg, tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "data")
    cfg = compose_cfg(f"dataset.img_size={IMG}")
    assert cfg.dataset.cache is True  # the built-in dataset caches by default
    assert build_train_loader(instantiate(cfg.dataset), root, 1, 0, 0).dataset.cached
    cfg = compose_cfg(f"dataset.img_size={IMG}", "dataset.cache=false")
    assert not build_train_loader(instantiate(cfg.dataset), root, 1, 0, 0).dataset.cached
    for name in ("horse2zebra", "monet2photo"):
        assert compose_cfg(f"dataset={name}").dataset.cache is False
