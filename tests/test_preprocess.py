"""dataset.preprocess modes x channel settings: shapes, values, the cache and file paths agreeing,
and today's default reproducing the old torchvision pipeline bit for bit."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from cyclegan.data.folder import (
    ImageFolderDataset,
    UnpairedImageDataset,
    UnreadableImageError,
    load_image,
)
from cyclegan.data.sampling import EpochSampler
from cyclegan.data.transforms import (
    Preprocess,
    Preprocessing,
    augment,
    eval_transform,
    parse_crop_size,
    to_display_rgb,
    to_uint8_tensor,
    train_transform,
)

# Mixed sizes and orientations, (width, height): landscape, portrait, square.
SIZES = [(40, 24), (24, 40), (32, 32)]

# One spec per mode, with the (C-less) sample shape each image size gives.
MODES: dict[str, tuple[Preprocessing, list[tuple[int, int]]]] = {
    "resize_and_crop": (Preprocessing("resize_and_crop", 28, "16x24"), [(16, 24)] * 3),
    "crop": (Preprocessing("crop", 24, "16x20"), [(16, 20)] * 3),
    # width to 32; height int(32 * h / w), at least the crop height, rounded to a multiple of 4
    "scale_width": (Preprocessing("scale_width", 32, 16), [(20, 32), (52, 32), (32, 32)]),
    "scale_width_and_crop": (Preprocessing("scale_width_and_crop", 32, "16x24"), [(16, 24)] * 3),
    "none": (Preprocessing("none", 1, 16), [(24, 40), (40, 24), (32, 32)]),
}


def noise_image(path: Path, seed: int, size: tuple[int, int], mode: str = "RGB") -> Path:
    """Random pixels, so any mismatch in crop offset, flip or resize changes the values."""
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = 1 if mode == "L" else 3
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    Image.fromarray(pixels[:, :, 0] if channels == 1 else pixels, mode).save(path)
    return path


def make_root(root: Path, mode_a: str = "RGB", mode_b: str = "RGB") -> Path:
    for i, size in enumerate(SIZES):
        noise_image(root / "trainA" / f"{i}.png", i, size, mode_a)
        noise_image(root / "trainB" / f"{i}.png", 10 + i, size[::-1], mode_b)
    return root


def test_parse_crop_size_and_bad_specs() -> None:
    assert parse_crop_size(256) == (256, 256)
    assert parse_crop_size("256x512") == (256, 512)
    assert parse_crop_size(" 64 ") == (64, 64)
    assert parse_crop_size((8, 12)) == (8, 12)
    for bad in ("wide", "0x4", 0, True, "4x4x4", (4,)):
        with pytest.raises(ValueError, match=r"dataset.crop_size"):
            parse_crop_size(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"dataset.preprocess"):
        Preprocessing("zoom")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="load_size >= 512"):
        Preprocessing("resize_and_crop", 300, "256x512")  # a portrait image would not cover it
    with pytest.raises(ValueError, match="load_size >= 24"):
        Preprocessing("scale_width_and_crop", 20, "16x24")
    with pytest.raises(ValueError, match="multiple of 4"):
        Preprocessing("scale_width", 30, 16)
    with pytest.raises(ValueError, match=r"dataset.load_size"):
        Preprocessing("crop", 0, 16)
    assert Preprocessing("crop", 1, 16).crop_size == (16, 16)  # crop ignores load_size


def test_default_is_the_seed_recipe_and_legacy_arguments_map_onto_it() -> None:
    assert Preprocessing() == Preprocessing.legacy(256, 1.12) == Preprocessing("resize_and_crop")
    assert Preprocessing().load_size == 286 and Preprocessing().crop_size == (256, 256)
    assert Preprocessing.legacy(16, 1.12, flip=False) == Preprocessing(
        Preprocess.resize_and_crop, 17, 16, False
    )


@pytest.mark.parametrize("size", [(30, 20), (20, 30), (17, 17), (41, 19)])
@pytest.mark.parametrize("flip", [True, False])
def test_default_mode_is_bit_identical_to_the_old_torchvision_pipeline(
    size: tuple[int, int], flip: bool
) -> None:
    rng = np.random.default_rng(sum(size))
    img = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    old, new = train_transform(16, 1.12, flip), Preprocessing.legacy(16, 1.12, flip)
    for seed in range(6):
        torch.manual_seed(seed)
        expected = old(img)
        torch.manual_seed(seed)
        assert torch.equal(new(img), expected)


def test_dataset_with_preprocess_equals_todays_transform_arguments(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    today = UnpairedImageDataset(
        root, transform=train_transform(16, 1.12), seed=2, img_size=16, load_scale=1.12
    )
    typed = UnpairedImageDataset(root, seed=2, preprocess=Preprocessing.legacy(16, 1.12))
    cached = UnpairedImageDataset(root, seed=2, cache=True, img_size=16, load_scale=1.12)
    for key in [(0, 0), (0, 1), (3, 2)]:
        for side in "AB":
            assert torch.equal(typed[key][side], today[key][side])
            assert torch.equal(cached[key][side], today[key][side])
    with pytest.raises(ValueError, match="not both"):
        UnpairedImageDataset(root, img_size=16, preprocess=Preprocessing.legacy(16))


@pytest.mark.parametrize("channels", [(3, 3), (1, 1), (1, 3), (3, 1)], ids=str)
@pytest.mark.parametrize("mode", sorted(MODES))
def test_each_mode_and_channel_setting_cache_equals_files(
    tmp_path: Path, mode: str, channels: tuple[int, int]
) -> None:
    spec, shapes = MODES[mode]
    root = make_root(tmp_path)  # RGB on disk: one-channel domains are decoded to luma
    kwargs = {"seed": 5, "preprocess": spec, "channels_A": channels[0], "channels_B": channels[1]}
    files = UnpairedImageDataset(root, **kwargs)
    cached = UnpairedImageDataset(root, cache=True, **kwargs)
    assert cached.cached and not files.cached and not files.skipped
    for index, shape in enumerate(shapes):
        for epoch in (0, 1):
            key = (epoch, index)
            a, again, b = files[key], files[key], cached[key]
            assert a["A"].shape == (channels[0], *shape) and a["A"].dtype == torch.float32
            assert a["B"].shape[0] == channels[1]
            for side in "AB":
                assert torch.equal(a[side], b[side])  # the same pixels from either path
                assert torch.equal(a[side], again[side])  # a key is a sample: exact resume
                assert -1.0 <= a[side].min() < 0 < a[side].max() <= 1.0


@pytest.mark.parametrize("mode", ["resize_and_crop", "crop", "scale_width_and_crop"])
def test_cropping_modes_batch_mixed_sizes_and_orientations(tmp_path: Path, mode: str) -> None:
    spec, shapes = MODES[mode]
    data = UnpairedImageDataset(make_root(tmp_path), preprocess=spec, channels_A=1)
    loader = DataLoader(data, batch_size=3, sampler=EpochSampler(len(data), seed=0))
    batch = next(iter(loader))
    assert batch["A"].shape == (3, 1, *shapes[0]) and batch["B"].shape == (3, 3, *shapes[0])


def test_crop_mode_sample_is_a_window_of_the_raw_pixels(tmp_path: Path) -> None:
    path = noise_image(tmp_path / "x.png", 3, (30, 20))
    raw = to_uint8_tensor(Image.open(path).convert("RGB"))
    spec = Preprocessing("crop", 1, "8x12", flip=False)
    windows = {
        (t, lft): raw[:, t : t + 8, lft : lft + 12].float().div(255).sub(0.5).div(0.5)
        for t in range(13)
        for lft in range(19)
    }
    seen = set()
    for seed in range(8):
        torch.manual_seed(seed)
        out = spec(Image.open(path).convert("RGB"))
        matches = [pos for pos, w in windows.items() if torch.equal(out, w)]
        assert len(matches) == 1  # a real crop of the unresized image
        seen.add(matches[0])
    assert len(seen) > 1  # and the offset is random


def test_none_mode_rounds_to_multiples_of_4_and_keeps_exact_sizes_untouched() -> None:
    spec = Preprocessing("none", 1, 16, flip=False)
    assert spec.resized_size(40, 24) == (40, 24)
    assert spec.resized_size(30, 18) == (32, 16)  # Python's round: 7.5 -> 8, 4.5 -> 4
    assert spec.resized_size(2, 1) == (4, 4)  # never below one 4 px step
    pixels = np.random.default_rng(0).integers(0, 256, (24, 40), dtype=np.uint8)
    out = spec(Image.fromarray(pixels, "L"))
    assert torch.equal(out[0], torch.from_numpy(pixels).float().div(255).sub(0.5).div(0.5))


def test_scale_width_keeps_the_official_shortcut_and_height_floor() -> None:
    spec = Preprocessing("scale_width_and_crop", 32, 16)
    assert spec.resized_size(32, 50) == (32, 50)  # already 32 wide and tall enough: untouched
    assert spec.resized_size(64, 20) == (32, 16)  # 10 px high would not fit the crop: 16
    assert spec.resized_size(48, 60) == (32, 40)


def test_flip_mirrors_some_samples_and_never_without_flip() -> None:
    pixels = np.zeros((8, 8), np.uint8)
    pixels[:, :4] = 255  # left half white
    img = Image.fromarray(pixels, "L")
    for flip, expected in ((True, {-1.0, 1.0}), (False, {1.0})):
        spec = Preprocessing("none", 1, 8, flip=flip)
        torch.manual_seed(0)
        assert {float(spec(img)[0, 0, 0]) for _ in range(20)} == expected


def test_crop_mode_skips_smaller_images_one_line_each(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = make_root(tmp_path)
    small = [
        noise_image(root / "trainA" / "small1.png", 1, (12, 40)),
        noise_image(root / "trainA" / "small2.png", 2, (40, 10)),
    ]
    spec = Preprocessing("crop", 1, "16x20")
    with caplog.at_level(logging.WARNING):
        data = UnpairedImageDataset(root, preprocess=spec, cache=True)
    lines = [r.getMessage() for r in caplog.records if "smaller than the" in r.getMessage()]
    assert len(lines) == 3  # one per file, and the count
    assert "small1.png" in lines[0] and "40x12" in lines[0] and "small2.png" in lines[1]
    assert "skipped 2 of 5" in lines[2]
    assert data.skipped == set(small) and len(data.files_A) == 3
    assert all(data[(0, i)]["A"].shape == (3, 16, 20) for i in range(len(data)))
    for path in (root / "trainB").iterdir():
        noise_image(path, 0, (8, 8))
    with pytest.raises(UnreadableImageError, match=r"every image in .* smaller than the 16x20"):
        UnpairedImageDataset(root, preprocess=spec)


def test_exif_rotation_counts_for_the_size_check(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    rotated = root / "trainA" / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees: the 40x12 file decodes as 12x40
    Image.new("RGB", (40, 12)).save(rotated, exif=exif)
    data = UnpairedImageDataset(root, preprocess=Preprocessing("crop", 1, "16x20"))
    assert data.skipped == {rotated}


def test_grayscale_loading_stays_one_channel(tmp_path: Path) -> None:
    gray = np.random.default_rng(0).integers(0, 256, (6, 5), dtype=np.uint8)
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    rgb = np.random.default_rng(1).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "g16.png")
    la = np.stack([gray, np.full_like(gray, 0)], -1)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")

    assert np.array_equal(np.asarray(load_image(tmp_path / "g.png", 1)), gray)
    assert np.array_equal(np.asarray(load_image(tmp_path / "g16.png", 1)), gray)  # rescaled
    assert np.asarray(load_image(tmp_path / "la.png", 1)).tolist() == [[255] * 5] * 6  # on white
    luma = np.asarray(Image.fromarray(rgb).convert("L"))
    assert np.array_equal(np.asarray(load_image(tmp_path / "c.png", 1)), luma)
    assert load_image(tmp_path / "g.png", 3).mode == "RGB"
    with pytest.raises(ValueError, match="channels=2"):
        load_image(tmp_path / "g.png", 2)
    with pytest.raises(ValueError, match="channels_B=4"):
        UnpairedImageDataset(tmp_path, channels_B=4)
    folder = ImageFolderDataset(tmp_path, Preprocessing("none", 1, 4).eval_transform(), 1)
    assert {tuple(folder[i].shape) for i in range(len(folder))} == {(1, 4, 4)}


def test_eval_transform_is_deterministic_and_centre_crops() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    img = Image.fromarray(pixels)
    tf = Preprocessing("crop", 1, "8x12").eval_transform()
    out = tf(img)
    centre = to_uint8_tensor(img)[:, 6:14, 9:21].float().div(255).sub(0.5).div(0.5)
    assert torch.equal(out, centre) and torch.equal(tf(img), out)
    small = Preprocessing("crop", 1, 24).eval_transform()(img)  # upscaled, not dropped
    assert small.shape == (3, 24, 24)
    # Every mode gives crop_size, so test images of any shape stack into one tensor.
    for mode in Preprocess:
        assert Preprocessing(mode, 32, "16x24").eval_transform()(img).shape == (3, 16, 24)
    # The default mode's evaluation images are exactly those of eval_transform(img_size).
    assert torch.equal(Preprocessing.legacy(16).eval_transform()(img), eval_transform(16)(img))


def test_augment_refuses_an_image_smaller_than_the_crop() -> None:
    with pytest.raises(ValueError, match=r"dataset.crop_size"):
        augment(torch.zeros(1, 8, 8, dtype=torch.uint8), Preprocessing("crop", 1, 12))


def test_display_repeats_grayscale_for_grids_only() -> None:
    gray = torch.rand(2, 1, 4, 4)
    shown = to_display_rgb(gray)
    assert shown.shape == (2, 3, 4, 4) and all(
        torch.equal(shown[:, c], gray[:, 0]) for c in range(3)
    )
    rgb = torch.rand(2, 3, 4, 4)
    assert to_display_rgb(rgb) is rgb
    with pytest.raises(ValueError, match="1 or 3"):
        to_display_rgb(torch.rand(1, 2, 4, 4))


def test_uncropped_modes_report_their_sizes_and_refuse_mixed_batches(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    data = UnpairedImageDataset(root, preprocess=MODES["scale_width"][0])
    assert data.sample_sizes()["A"] == {(20, 32), (52, 32), (32, 32)}
    data.check_batch_size(1)  # one image per batch: any shapes train
    with pytest.raises(ValueError, match=r"domain A has 3 sample sizes .* trainer\.batch_size=1"):
        data.check_batch_size(2)
    cropped = UnpairedImageDataset(root, preprocess=MODES["crop"][0])
    assert cropped.sample_sizes() == {"A": {(16, 20)}, "B": {(16, 20)}}
    cropped.check_batch_size(8)
    same = tmp_path / "same"
    for side in "AB":
        for i in range(2):
            noise_image(same / f"train{side}" / f"{i}.png", i, (40, 24))
    UnpairedImageDataset(same, preprocess=MODES["none"][0]).check_batch_size(2)
