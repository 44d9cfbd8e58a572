"""The device-side uint8 cache: same pixels as the dataset's cache path, keyed on (seed, epoch, index)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan.data.device_cache import DeviceBatches, DeviceImageCache, normalize_uint8
from cyclegan.data.folder import UnpairedImageDataset
from cyclegan.data.sampling import EpochSampler
from cyclegan.data.transforms import Preprocess, Preprocessing, crop_flip_normalize
from tests.host_reads import forbid_host_reads

IMG, SCALE = 16, 1.12  # resized short side 17: two crop offsets per axis on the short side


def noise_image(path: Path, seed: int, size: tuple[int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def make_dataset(root: Path, corrupt: bool = False, **kwargs) -> UnpairedImageDataset:
    """5 landscape A images of varied widths, 3 portrait B images (optionally one corrupt)."""
    for i in range(5):
        noise_image(root / "trainA" / f"{i}.png", i, (20 + 3 * i, 18))
    for i in range(3):
        noise_image(root / "trainB" / f"{i}.png", 100 + i, (18, 24 + i))
    if corrupt:
        (root / "trainB" / "1.png").write_bytes(b"not a png")
    return UnpairedImageDataset(root, seed=3, cache=True, img_size=IMG, load_scale=SCALE, **kwargs)


def loader(data: UnpairedImageDataset, batch_size: int, **sampler_kwargs) -> DeviceBatches:
    sampler = EpochSampler(len(data), seed=7, **sampler_kwargs)
    return DeviceBatches.from_dataset(data, sampler, batch_size, "cpu")


def expected_batches(data, sampler: EpochSampler, batch_size: int) -> list[dict]:
    keys = list(sampler)
    return [
        {d: torch.stack([data[k][d] for k in keys[s : s + batch_size]]) for d in "AB"}
        for s in range(0, len(keys), batch_size)
    ]


@pytest.mark.parametrize("flip", [True, False])
def test_same_pixels_as_the_dataset_for_every_key(tmp_path: Path, flip: bool) -> None:
    data = make_dataset(tmp_path, flip=flip)
    batches = loader(data, batch_size=2)
    for epoch in (0, 3):
        batches.sampler.set_epoch(epoch)
        got = list(batches)
        want = expected_batches(data, batches.sampler, 2)
        assert [b["A"].shape for b in got] == [(2, 3, IMG, IMG)] * 2 + [(1, 3, IMG, IMG)]
        for g, w in zip(got, want, strict=True):
            assert torch.equal(g["A"], w["A"]) and torch.equal(g["B"], w["B"])  # bit-identical
    assert len(batches) == 3


@pytest.mark.parametrize(
    ("preprocess", "channels_A"),
    [
        (Preprocessing(Preprocess.crop, crop_size=(12, 16)), 1),  # no resize, HxW crop, gray A
        (Preprocessing(Preprocess.scale_width_and_crop, 20, (16, 12), flip=True), 3),
        (Preprocessing(Preprocess.resize_and_crop, 18, (14, 18), flip=False), 1),
    ],
)
def test_same_pixels_in_every_cropping_mode_and_channel_count(
    tmp_path: Path, preprocess: Preprocessing, channels_A: int
) -> None:
    make_dataset(tmp_path)
    data = UnpairedImageDataset(
        tmp_path, seed=3, cache=True, preprocess=preprocess, channels_A=channels_A
    )
    batches = loader(data, batch_size=3)
    batches.sampler.set_epoch(1)
    got, want = list(batches), expected_batches(data, batches.sampler, 3)
    assert got[0]["A"].shape == (3, channels_A, *preprocess.crop_size)
    for g, w in zip(got, want, strict=True):
        assert torch.equal(g["A"], w["A"]) and torch.equal(g["B"], w["B"])


def test_unreadable_images_are_replaced_as_in_the_dataset(tmp_path: Path) -> None:
    data = make_dataset(tmp_path, corrupt=True)
    batches = loader(data, batch_size=5)
    batches.sampler.set_epoch(1)
    (got,) = list(batches)
    (want,) = expected_batches(data, batches.sampler, 5)
    assert torch.equal(got["B"], want["B"]) and torch.equal(got["A"], want["A"])
    assert batches.cache_B.remap == [0, 2, 2]


def test_resume_mid_epoch_and_ddp_shards_use_the_same_keys(tmp_path: Path) -> None:
    data = make_dataset(tmp_path)
    full = loader(data, batch_size=1)
    full.sampler.set_epoch(2)
    everything = [b["A"] for b in full]
    resumed = loader(data, batch_size=1)
    resumed.sampler.set_epoch(2, start=3)  # the loop skips the samples already trained on
    assert all(
        torch.equal(a, b) for a, b in zip(everything[3:], (b["A"] for b in resumed), strict=True)
    )
    ranks = [loader(data, batch_size=1, rank=r, world_size=2) for r in (0, 1)]
    for r, shard in enumerate(ranks):
        shard.sampler.set_epoch(2)
        assert all(torch.equal(a, b["A"]) for a, b in zip(everything[r::2], shard, strict=False))


def test_crop_by_hand_and_without_host_reads() -> None:
    image = torch.arange(2 * 3 * 4, dtype=torch.uint8).view(2, 3, 4)  # C=2, H=3, W=4
    other = torch.full((2, 4, 3), 200, dtype=torch.uint8)
    cache = DeviceImageCache([image, None, other], "cpu")
    draws = torch.tensor([[0, 1, 2, 0], [0, 0, 1, 1], [2, 2, 0, 0]])  # image, top, left, mirror
    with forbid_host_reads():
        crops = cache.crop(draws, 2, 2)
        normalized = normalize_uint8(crops)
    assert torch.equal(crops[0], image[:, 1:3, 2:4])
    assert torch.equal(crops[1], image[:, 0:2, 1:3].flip(-1))
    assert torch.equal(crops[2], other[:, 2:4, 0:2])
    assert cache.remap == [0, 2, 2] and cache.size_of(1) == (4, 3)
    # Same values as the host path's crop_flip_normalize on the same crop.
    torch.manual_seed(0)
    assert torch.equal(normalized[2], crop_flip_normalize(other[:, 2:4, 0:2], 2, flip=False))


def test_channels_last_output(tmp_path: Path) -> None:
    data = make_dataset(tmp_path)
    sampler = EpochSampler(len(data), seed=7)
    batches = DeviceBatches.from_dataset(data, sampler, 2, "cpu", torch.channels_last)
    batch = next(iter(batches))
    assert batch["A"].is_contiguous(memory_format=torch.channels_last)


def test_bad_inputs_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no readable images"):
        DeviceImageCache([None, None], "cpu")
    with pytest.raises(ValueError, match="one channel count per domain"):
        DeviceImageCache(
            [torch.zeros(3, 4, 4, dtype=torch.uint8), torch.zeros(1, 4, 4, dtype=torch.uint8)],
            "cpu",
        )
    with pytest.raises(ValueError, match="must be uint8"):
        DeviceImageCache([torch.zeros(3, 4, 4)], "cpu")
    small = DeviceImageCache([torch.zeros(3, 8, 8, dtype=torch.uint8)], "cpu")
    with pytest.raises(ValueError, match="smaller than the 16x16 crop"):
        DeviceBatches(small, small, EpochSampler(1), 1, Preprocessing.legacy(16))
    with pytest.raises(ValueError, match="EpochSampler"):
        DeviceBatches(small, small, EpochSampler(4), 1, Preprocessing.legacy(8, 1.0))
    with pytest.raises(ValueError, match="needs samples of one size"):
        DeviceBatches(small, small, EpochSampler(1), 1, Preprocessing(Preprocess.none))
    plain = UnpairedImageDataset(make_dataset(tmp_path).root, img_size=IMG)
    with pytest.raises(ValueError, match=r"dataset\.cache=true"):
        DeviceBatches.from_dataset(plain, EpochSampler(len(plain)), 1, "cpu")


def test_training_with_the_device_cache_equals_training_without(
    compose_cfg, tmp_path: Path
) -> None:
    """trainer.device_cache=true: the same batches, so the same losses and weights (CPU, exact)."""
    from cyclegan.checkpoints.file import load_checkpoint
    from cyclegan.training.builder import train
    from tests.conftest import TINY

    tiny = [*TINY, "trainer.sample_every=0", "trainer.n_samples=1"]
    first = train(compose_cfg(*tiny))
    second = train(
        compose_cfg(*tiny, "trainer.device_cache=true", f"paths.output_dir={tmp_path / 'b'}")
    )
    assert first == second
    a = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["last_logged"] == b["last_logged"]  # the logged losses, bit for bit
    losses = [k for k in a["window"] if not k.startswith("_")]  # the rest are host timings
    assert all(a["window"][k] == b["window"][k] for k in losses)


def test_device_cache_without_the_dataset_cache_is_refused(compose_cfg) -> None:
    from cyclegan.config.schema import ConfigError
    from cyclegan.training.validation import validate
    from tests.conftest import TINY

    with pytest.raises(ConfigError, match=r"set dataset\.cache=true too"):
        validate(compose_cfg(*TINY, "trainer.device_cache=true", "dataset.cache=false"))
