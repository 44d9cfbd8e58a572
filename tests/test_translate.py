"""translate: any size and format in, same size out, mirrored tree, inputs never overwritten."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan.inference.tiling import pad_to_multiple, run_padded, run_tiled
from cyclegan.inference.translate import main, to_image, to_tensor
from cyclegan.parts.networks.resnet import Generator


@pytest.fixture
def generator_file(tmp_path: Path) -> tuple[Path, Generator]:
    """A generator file written by the official code (6 residual blocks, ngf 16, random weights:
    tests/data/README.md) under the name it gives it, and our Generator holding its weights."""
    reference = Path(__file__).parent / "data" / "official_latest_net_G_A_resnet6_ngf16.pth"
    path = tmp_path / "latest_net_G_A.pth"
    shutil.copyfile(reference, path)
    g = Generator(3, ngf=16, n_residual_blocks=6, upsampling="transposed")
    g.load_state_dict(torch.load(path, weights_only=True), strict=True)
    return path, g.eval()


def _random_image(size: tuple[int, int], mode: str = "RGB", seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    array = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    return Image.fromarray(array[:, :, 0] if channels == 1 else array, mode)


@pytest.fixture
def photo_tree(tmp_path: Path) -> Path:
    """Mixed sizes and formats, nested folders, a corrupt file and a non-image file."""
    root = tmp_path / "photos"
    (root / "sub" / "deeper").mkdir(parents=True)
    _random_image((37, 53), seed=1).save(root / "a.png")
    _random_image((37, 53), seed=2).save(root / "e.png")  # same size as a.png: one batch
    _random_image((64, 48), seed=3).save(root / "sub" / "b.jpg", quality=90)
    _random_image((30, 30), "L", seed=4).save(root / "sub" / "deeper" / "c.png")
    _random_image((20, 17), "RGBA", seed=5).save(root / "d.png")
    (root / "sub" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    (root / "notes.txt").write_text("not an image")
    return root


EXPECTED = {
    "a.png": (37, 53),
    "e.png": (37, 53),
    "sub/b.jpg": (64, 48),
    "sub/deeper/c.png": (30, 30),
    "d.png": (20, 17),
}


def test_folder_of_mixed_sizes_and_formats(
    generator_file, photo_tree: Path, tmp_path: Path, caplog
) -> None:
    ckpt, _ = generator_file
    out = tmp_path / "out"
    status = main([f"ckpt={ckpt}", f"input={photo_tree}", f"output={out}", "progress=false"])
    assert status == 1  # one unreadable input skipped, everything else written
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == sorted(EXPECTED)
    for rel, size in EXPECTED.items():
        with Image.open(out / rel) as img:
            assert img.size == size, rel
            assert img.mode == "RGB"
    assert "broken.jpg" in caplog.text


def test_output_matches_the_generator_and_batching_changes_nothing(
    generator_file, photo_tree: Path, tmp_path: Path
) -> None:
    ckpt, g = generator_file
    for batch in (1, 4):
        out = tmp_path / f"out{batch}"
        main(
            [
                f"ckpt={ckpt}",
                f"input={photo_tree}",
                f"output={out}",
                f"batch_size={batch}",
                "progress=false",
            ]
        )
    for name in ("a.png", "e.png"):
        one = np.asarray(Image.open(tmp_path / "out1" / name), dtype=int)
        four = np.asarray(Image.open(tmp_path / "out4" / name), dtype=int)
        assert np.abs(one - four).max() <= 1  # float rounding at most
    # 37x53 is padded to 40x56 by reflection, translated and cropped back.
    x = to_tensor(Image.open(photo_tree / "a.png").convert("RGB"))[None]
    with torch.no_grad():
        padded = torch.nn.functional.pad(x, (0, 3, 0, 3), mode="reflect")
        expected = to_image(g(padded)[0, :, :53, :37])
    got = np.asarray(Image.open(tmp_path / "out4" / "a.png"), dtype=int)
    assert np.abs(got - np.asarray(expected, dtype=int)).max() <= 1


def test_refuses_to_write_into_the_input_folder(generator_file, photo_tree: Path, capsys) -> None:
    ckpt, _ = generator_file
    before = {p: p.read_bytes() for p in photo_tree.rglob("*") if p.is_file()}
    assert main([f"ckpt={ckpt}", f"input={photo_tree}", f"output={photo_tree}"]) == 2
    assert "is or contains the input folder" in capsys.readouterr().err
    glob_input = f"input={photo_tree}/**/*.png"
    assert main([f"ckpt={ckpt}", glob_input, f"output={photo_tree}"]) == 2
    assert "is or contains the input folder" in capsys.readouterr().err
    single = photo_tree / "a.png"
    assert main([f"ckpt={ckpt}", f"input={single}", f"output={photo_tree}"]) == 2
    assert "is or contains the input folder" in capsys.readouterr().err
    # Mirroring photos/sub into photos/ would mix outputs with the originals: refused too.
    assert main([f"ckpt={ckpt}", f"input={photo_tree / 'sub'}", f"output={photo_tree}"]) == 2
    assert "is or contains the input folder" in capsys.readouterr().err
    after = {p: p.read_bytes() for p in photo_tree.rglob("*") if p.is_file()}
    assert after == before


def test_output_inside_input_is_not_read_back(generator_file, photo_tree: Path, capsys) -> None:
    ckpt, _ = generator_file
    out = photo_tree / "translated"
    args = [f"ckpt={ckpt}", f"input={photo_tree}", f"output={out}", "progress=false"]
    assert main(args) == 1
    first = sorted(p.relative_to(out) for p in out.rglob("*.*"))
    assert main(args) == 1  # a second run must not translate its own outputs
    assert sorted(p.relative_to(out) for p in out.rglob("*.*")) == first


def test_glob_single_file_and_ext(generator_file, photo_tree: Path, tmp_path: Path) -> None:
    ckpt, _ = generator_file
    out = tmp_path / "globbed"
    assert (
        main(
            [
                f"ckpt={ckpt}",
                f"input={photo_tree}/**/*.png",
                f"output={out}",
                "ext=jpg",
                "progress=false",
            ]
        )
        == 0
    )
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jpg")) == [
        "a.jpg",
        "d.jpg",
        "e.jpg",
        "sub/deeper/c.jpg",
    ]
    single = tmp_path / "single"
    assert (
        main(
            [
                "--ckpt",
                str(ckpt),
                "--input",
                str(photo_tree / "sub" / "b.jpg"),
                "--output",
                str(single),
                "--progress",
                "false",
            ]
        )
        == 0
    )
    assert [p.name for p in single.iterdir()] == ["b.jpg"]


def test_bad_arguments_exit_2(generator_file, tmp_path: Path, capsys) -> None:
    ckpt, _ = generator_file
    assert main([f"ckpt={ckpt}", f"input={tmp_path / 'nope'}", f"output={tmp_path / 'o'}"]) == 2
    assert "not a file, a folder or a glob" in capsys.readouterr().err
    bad_ckpt = tmp_path / "D_A_5.pth"
    bad_ckpt.write_bytes(b"junk")
    (tmp_path / "in").mkdir()
    _random_image((16, 16)).save(tmp_path / "in" / "x.png")
    assert main([f"ckpt={bad_ckpt}", f"input={tmp_path / 'in'}", f"output={tmp_path / 'o'}"]) == 2
    assert "not a readable PyTorch weights file" in capsys.readouterr().err


def test_padding_sizes() -> None:
    assert pad_to_multiple(torch.zeros(1, 3, 53, 37)).shape[-2:] == (56, 40)
    assert pad_to_multiple(torch.zeros(1, 3, 64, 48)).shape[-2:] == (64, 48)
    tiny = pad_to_multiple(torch.arange(15.0).reshape(1, 1, 3, 5))  # too small to reflect
    assert tiny.shape[-2:] == (8, 8) and tiny[0, 0, -1, -1] == 14.0


def test_tiles_blend_back_exactly() -> None:
    # With a pixel-wise network the tiled result must equal the untiled one: the blending weights
    # add up to one everywhere, tiles cover the image, and each tile is cropped back correctly.
    net = torch.nn.Conv2d(3, 3, 1)
    x = torch.rand(1, 3, 70, 45) * 2 - 1
    with torch.no_grad():
        whole = net(x)
        tiled = run_tiled(net, x, tile=32, overlap=8, batch_size=3)
    torch.testing.assert_close(tiled, whole, atol=1e-6, rtol=1e-5)


def test_tiling_large_image_keeps_size(generator_file) -> None:
    _, g = generator_file
    x = torch.rand(1, 3, 50, 41) * 2 - 1
    with torch.no_grad():
        tiled = run_tiled(g, x, tile=24, overlap=8)
        whole = run_padded(g, x)
    assert tiled.shape == whole.shape == x.shape
    assert tiled.abs().max() <= 1.0


def test_output_that_is_an_existing_file_is_refused(
    generator_file, photo_tree: Path, tmp_path: Path, capsys
) -> None:
    ckpt, _ = generator_file
    existing = tmp_path / "out.png"
    existing.write_bytes(b"keep me")
    assert main([f"ckpt={ckpt}", f"input={photo_tree}", f"output={existing}"]) == 2
    err = capsys.readouterr().err
    assert "is an existing file" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert existing.read_bytes() == b"keep me"
