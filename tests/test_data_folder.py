"""Tests for cyclegan.data.folder and cyclegan.data.transforms (tiny images made with PIL)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from cyclegan.data.folder import (
    DatasetNotFoundError,
    ImageFolderDataset,
    PairedImageFolder,
    UnpairedImageDataset,
    UnreadableImageError,
    find_split_dirs,
    list_images,
    load_rgb,
)
from cyclegan.data.transforms import eval_transform, to_image_range, train_transform

# Distinct, exactly representable solid colours so a sample's source file can be identified.
COLORS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255)]


def save(path: Path, color: tuple[int, int, int] = (10, 20, 30), size=(8, 8)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def make_split(root: Path, split: str, n_a: int, n_b: int, official: bool = True) -> None:
    dir_a = root / f"{split}A" if official else root / split / "A"
    dir_b = root / f"{split}B" if official else root / split / "B"
    for i in range(n_a):
        save(dir_a / f"a{i}.png", COLORS[i % len(COLORS)])
    for i in range(n_b):
        save(dir_b / f"b{i}.png", COLORS[i % len(COLORS)])


def pixels(img: Image.Image) -> np.ndarray:
    assert img.mode == "RGB"
    arr = np.asarray(img)
    assert arr.dtype == np.uint8
    return arr


# --- folders ----------------------------------------------------------------------------------


@pytest.mark.parametrize("official", [True, False])
def test_find_split_dirs_both_layouts(tmp_path: Path, official: bool) -> None:
    make_split(tmp_path, "train", 1, 1, official=official)
    dir_a, dir_b = find_split_dirs(tmp_path, "train")
    expected = ("trainA", "trainB") if official else ("A", "B")
    assert (dir_a.name, dir_b.name) == expected
    assert dir_a.is_dir() and dir_b.is_dir()


def test_missing_root_names_download_command(tmp_path: Path) -> None:
    root = tmp_path / "horse2zebra"
    with pytest.raises(DatasetNotFoundError) as info:
        find_split_dirs(root, "train", download_name="horse2zebra")
    assert str(info.value) == (
        f"dataset folder '{root}' not found; download it with: "
        f"python -m cyclegan.data.download horse2zebra --root {tmp_path}"
    )
    with pytest.raises(DatasetNotFoundError, match="trainA"):
        UnpairedImageDataset(root)  # without a download name: names the expected layouts
    assert issubclass(DatasetNotFoundError, FileNotFoundError)


def test_missing_split_names_expected_folders(tmp_path: Path) -> None:
    make_split(tmp_path, "test", 1, 1)
    with pytest.raises(DatasetNotFoundError) as info:
        find_split_dirs(tmp_path, "train")
    msg = str(info.value)
    assert "trainA" in msg and "trainB" in msg and str(Path("train") / "A") in msg
    assert "testA" in msg  # says what was found instead


def test_empty_domain(tmp_path: Path) -> None:
    make_split(tmp_path, "train", 2, 0)
    (tmp_path / "trainB").mkdir()
    (tmp_path / "trainB" / "readme.txt").write_text("no images here")
    with pytest.raises(DatasetNotFoundError, match=r"no images in '.*trainB' \(expected \.jpg/"):
        UnpairedImageDataset(tmp_path)


def test_list_images_recursive_sorted_and_filtered(tmp_path: Path) -> None:
    for rel in ["b.PNG", "a.jpg", "sub/c.JpEg", "z.webp"]:
        save(tmp_path / rel)
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "Thumbs.db").write_bytes(b"x")
    save(tmp_path / ".hidden.png")
    save(tmp_path / ".ipynb_checkpoints" / "d.png")
    files = list_images(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in files] == [
        "a.jpg",
        "b.PNG",
        "sub/c.JpEg",
        "z.webp",
    ]


# --- decoding -----------------------------------------------------------------------------------


def test_load_modes_to_rgb(tmp_path: Path) -> None:
    gray = tmp_path / "gray.png"
    Image.new("L", (2, 2), 77).save(gray)
    assert (pixels(load_rgb(gray)) == 77).all()

    la = tmp_path / "la.png"
    img = Image.new("LA", (3, 1))
    img.putdata([(0, 0), (0, 255), (100, 128)])
    img.save(la)
    arr = pixels(load_rgb(la))
    assert arr[0, 0].tolist() == [255, 255, 255]  # fully transparent -> white background
    assert arr[0, 1].tolist() == [0, 0, 0]  # opaque black stays black
    assert abs(int(arr[0, 2, 0]) - 177) <= 1  # 100 over white at alpha 128/255

    rgba = tmp_path / "rgba.png"
    img = Image.new("RGBA", (2, 1))
    img.putdata([(200, 0, 0, 0), (10, 20, 30, 255)])
    img.save(rgba)
    arr = pixels(load_rgb(rgba))
    assert arr[0, 0].tolist() == [255, 255, 255]
    assert arr[0, 1].tolist() == [10, 20, 30]

    pal = tmp_path / "pal.png"
    img = Image.new("P", (2, 1))
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * (254 * 3))
    img.putdata([0, 1])
    img.save(pal, transparency=0)
    with Image.open(pal) as check:
        assert check.mode == "P" and "transparency" in check.info
    arr = pixels(load_rgb(pal))
    assert arr[0, 0].tolist() == [255, 255, 255]  # transparent palette entry
    assert arr[0, 1].tolist() == [0, 0, 255]

    cmyk = tmp_path / "cmyk.tif"
    img = Image.new("CMYK", (2, 1))
    img.putdata([(0, 0, 0, 0), (255, 0, 0, 0)])
    img.save(cmyk)
    arr = pixels(load_rgb(cmyk))
    assert arr[0, 0].tolist() == [255, 255, 255]
    assert arr[0, 1].tolist() == [0, 255, 255]  # pure cyan


def test_load_16bit_png_scales_without_clipping(tmp_path: Path) -> None:
    path = tmp_path / "deep.png"
    Image.fromarray(np.array([[0, 257, 32768, 65535]], dtype=np.uint16)).save(path)
    with Image.open(path) as check:
        assert check.mode in ("I;16", "I")
    arr = pixels(load_rgb(path))
    assert arr.shape == (1, 4, 3)
    assert arr[0, :, 0].tolist() == [0, 1, 128, 255]


def test_load_applies_exif_orientation(tmp_path: Path) -> None:
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: viewers rotate 90 degrees clockwise
    Image.new("RGB", (8, 4), (0, 128, 0)).save(path, exif=exif)
    assert load_rgb(path).size == (4, 8)


def test_corrupt_and_truncated_files_raise_naming_the_file(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"this is not an image at all")
    with pytest.raises(UnreadableImageError, match=r"corrupt\.png"):
        load_rgb(corrupt)

    for ext in ("png", "jpg"):
        full = tmp_path / f"full.{ext}"
        noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(noise).save(full)
        data = full.read_bytes()
        truncated = tmp_path / f"truncated.{ext}"
        truncated.write_bytes(data[: len(data) // 2])
        with pytest.raises(UnreadableImageError, match=re.escape(f"truncated.{ext}")):
            load_rgb(truncated)
    assert issubclass(UnreadableImageError, ValueError)


# --- datasets -----------------------------------------------------------------------------------


def color_index(t: torch.Tensor) -> int:
    rgb = tuple(int(v) for v in to_image_range(t)[:, 0, 0].mul(255).round())
    return COLORS.index(rgb)


def test_unpaired_dataset_length_and_b_sampled_independently(tmp_path: Path) -> None:
    make_split(tmp_path, "train", 2, 6)
    ds = UnpairedImageDataset(tmp_path)
    assert len(ds) == 6 and len(ds.files_A) == 2 and len(ds.files_B) == 6
    torch.manual_seed(0)
    a_idx, b_idx = [], []
    for _ in range(5):
        for i in range(len(ds)):
            item = ds[i]
            assert item["A"].shape == item["B"].shape == (3, 8, 8)
            a_idx.append(color_index(item["A"]))
            b_idx.append(color_index(item["B"]))
    assert a_idx == [i % 2 for i in range(6)] * 5  # A cycles in order
    assert any(a != b for a, b in zip(a_idx, b_idx, strict=True))
    assert len(set(b_idx)) >= 4  # B covers several files, not tied to the index
    torch.manual_seed(0)
    assert [color_index(ds[i]["B"]) for i in range(6)] == b_idx[:6]  # reproducible from seed
    with pytest.raises(IndexError):
        ds[len(ds)]
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["A"].shape == (4, 3, 8, 8)


def test_unpaired_dataset_skips_unreadable(tmp_path: Path, caplog) -> None:
    make_split(tmp_path, "train", 3, 1)
    bad = tmp_path / "trainA" / "a0.png"
    bad.write_bytes(b"garbage")
    ds = UnpairedImageDataset(tmp_path)
    with caplog.at_level(logging.WARNING, logger="cyclegan.data.folder"):
        first = ds[0]
        again = ds[0]
    assert color_index(first["A"]) == 1  # substituted by the next file, a1.png
    assert color_index(again["A"]) == 1
    assert ds.skipped == {bad}
    warnings = [r for r in caplog.records if "a0.png" in r.getMessage()]
    assert len(warnings) == 1  # logged once per file

    for path in ds.files_A:
        path.write_bytes(b"garbage")
    with pytest.raises(UnreadableImageError, match="no readable images"):
        ds[1]


def test_paired_image_folder_pairs_by_name(tmp_path: Path, caplog) -> None:
    save(tmp_path / "testA" / "001.png", COLORS[0])
    save(tmp_path / "testA" / "002.png", COLORS[1])
    save(tmp_path / "testA" / "only_a.png", COLORS[2])
    save(tmp_path / "testB" / "002.jpg", (0, 0, 0))
    save(tmp_path / "testB" / "001.png", COLORS[3])
    with caplog.at_level(logging.WARNING, logger="cyclegan.data.folder"):
        ds = PairedImageFolder(tmp_path / "testA", tmp_path / "testB")
    assert "1 only in" in caplog.text
    assert len(ds) == 2 and ds.names == ["001", "002"]
    item = ds[0]
    assert item["name"] == "001"
    assert color_index(item["A"]) == 0 and color_index(item["B"]) == 3

    save(tmp_path / "other" / "zzz.png")
    with pytest.raises(ValueError, match="no file names in common"):
        PairedImageFolder(tmp_path / "testA", tmp_path / "other")


def test_image_folder_dataset(tmp_path: Path) -> None:
    save(tmp_path / "x" / "1.png", size=(10, 6))
    save(tmp_path / "x" / "2.png", size=(6, 10))
    ds = ImageFolderDataset(tmp_path / "x", eval_transform(4))
    assert len(ds) == 2
    assert torch.stack([ds[0], ds[1]]).shape == (2, 3, 4, 4)


# --- transforms ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(40, 20), (20, 40), (16, 16)])
def test_transform_shapes_and_range(size: tuple[int, int]) -> None:
    noise = np.random.default_rng(1).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    img = Image.fromarray(noise)
    for tf in (train_transform(16), train_transform(16, flip=False), eval_transform(16)):
        out = tf(img)
        assert out.shape == (3, 16, 16) and out.dtype == torch.float32
        assert out.min() >= -1.0 and out.max() <= 1.0 and out.min() < 0 < out.max()


def test_train_transform_flips_randomly() -> None:
    arr = np.zeros((8, 8, 3), dtype=np.uint8)
    arr[:, :4] = 255  # left half white
    img = Image.fromarray(arr)
    tf = train_transform(8, load_scale=1.0)  # resize and crop are identities at 8 px
    torch.manual_seed(0)
    lefts = {float(tf(img)[0, 0, 0]) for _ in range(20)}
    assert lefts == {-1.0, 1.0}
    no_flip = train_transform(8, load_scale=1.0, flip=False)
    assert {float(no_flip(img)[0, 0, 0]) for _ in range(10)} == {1.0}


def test_transform_validation_and_to_image_range() -> None:
    with pytest.raises(ValueError, match="img_size"):
        train_transform(0)
    with pytest.raises(ValueError, match="load_scale"):
        train_transform(16, load_scale=0.9)
    with pytest.raises(ValueError, match="img_size"):
        eval_transform(-3)
    x = torch.tensor([-2.0, -1.0, 0.0, 1.0, 3.0])
    assert to_image_range(x).tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]
    assert x.tolist() == [-2.0, -1.0, 0.0, 1.0, 3.0]  # input untouched
