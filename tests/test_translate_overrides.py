"""translate's `format=` and `variant=`/`ngf=`/`n_residual_blocks=` (README, Translate): each
reaches the generator that is built, through the command line; a wrong one is one line and exit
status 2. The files are the reference code's (tests/data/README.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan.inference.importers import Format, load_generator
from cyclegan.inference.translate import main

DATA = Path(__file__).parent / "data"
PYTORCH_GAN = DATA / "pytorch_gan_G_AB_blocks1.pth"  # residual blocks under `block.`
OFFICIAL = DATA / "official_latest_net_G_A_resnet6_ngf16.pth"  # under `conv_block.`
NO_BLOCKS = DATA / "reference-layouts" / "pytorch_gan_G_AB_blocks0.pth"  # keys cannot tell
OUR_CHECKPOINT = DATA / "v1" / "step_0000006.pt"


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    pixels = np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / "x.png")
    return folder


def run(ckpt: Path, photos: Path, out: Path, *options: str) -> int:
    return main([f"ckpt={ckpt}", f"input={photos}", f"output={out}", "progress=false", *options])


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def reference_output(path: Path, **options: str) -> torch.Tensor:
    io = torch.load(DATA / "reference-layouts" / "io_reference_layouts.pt", weights_only=True)
    loaded = load_generator(path, **options)
    with torch.no_grad():
        out = loaded.generator(io[path.stem]["input"])
    torch.testing.assert_close(out, io[path.stem]["output_eval"], atol=1e-5, rtol=1e-5)
    return out


def test_format_names_the_layout_of_a_generator_without_residual_blocks(
    photos: Path, tmp_path: Path, capsys
) -> None:
    """PyTorch-GAN with --n_residual_blocks 0: no `block.` keys, so only format= can tell."""
    assert run(NO_BLOCKS, photos, tmp_path / "auto") == 2
    assert "force one with format=pytorch-gan|official" in one_error_line(capsys)
    assert run(NO_BLOCKS, photos, tmp_path / "pg", "format=pytorch-gan") == 0
    assert Image.open(tmp_path / "pg" / "x.png").size == (24, 20)
    loaded = load_generator(NO_BLOCKS, fmt="pytorch-gan")
    assert loaded.format is Format.pytorch_gan
    assert (loaded.spec.variant, loaded.spec.ngf, loaded.spec.n_residual_blocks) == (
        "resnet",
        64,
        0,
    )
    reference_output(NO_BLOCKS, fmt="pytorch-gan")  # the reference's outputs, to 1e-5
    # The official layout without blocks has its transposed convs where PyTorch-GAN's file has
    # none: the forced format built that generator, and the file does not fit it.
    assert run(NO_BLOCKS, photos, tmp_path / "off", "format=official") == 2
    assert "do not fit a paper generator with ngf=64, 0 blocks" in one_error_line(capsys)


@pytest.mark.parametrize(
    ("path", "forced", "message"),
    [
        (PYTORCH_GAN, "official", "in PyTorch-GAN's (format=pytorch-gan) layout"),
        (OFFICIAL, "pytorch-gan", "in the official (format=official) layout"),
        (OFFICIAL, "checkpoint", "format=checkpoint does not fit"),
        (OUR_CHECKPOINT, "official", "it is a training checkpoint of this project"),
        (OFFICIAL, "exported", "is not a readable safetensors file"),
        (PYTORCH_GAN, "cut", "has no residual blocks ('model.<i>.conv_block.' keys)"),
    ],
    ids=[
        "official-on-pytorch-gan",
        "pytorch-gan-on-official",
        "checkpoint-on-official",
        "official-on-our-checkpoint",
        "exported-on-pth",
        "cut-on-pytorch-gan",
    ],
)
def test_a_format_that_does_not_fit_the_file_is_one_line(
    path: Path, forced: str, message: str, photos: Path, tmp_path: Path, capsys
) -> None:
    assert run(path, photos, tmp_path / "out", "direction=AtoB") == 0  # detected, it loads
    capsys.readouterr()
    assert run(path, photos, tmp_path / "forced", f"format={forced}") == 2
    assert message in one_error_line(capsys)
    assert not (tmp_path / "forced").exists()  # refused before anything is written


def test_variant_ngf_and_blocks_reach_the_built_generator(
    photos: Path, tmp_path: Path, capsys
) -> None:
    # The values the keys imply load and reproduce the reference's outputs through the override
    # path (the residual blocks renamed to the variant's attribute)...
    io = torch.load(DATA / "io.pt", weights_only=True)[OFFICIAL.stem]
    loaded = load_generator(OFFICIAL, variant="paper", ngf=16, n_residual_blocks=6)
    with torch.no_grad():
        out = loaded.generator(io["input"])
    torch.testing.assert_close(out, io["output_eval"], atol=1e-5, rtol=1e-5)
    options = ("variant=paper", "ngf=16", "n_residual_blocks=6")
    assert run(OFFICIAL, photos, tmp_path / "same", *options) == 0
    # ... and other values build another generator, which the file does not fit: one line each,
    # naming what was built.
    for option, built in (
        ("variant=resnet", "a resnet generator with ngf=16, 6 blocks"),
        ("variant=cut", "a cut generator with ngf=16, 6 blocks"),
        ("ngf=8", "a paper generator with ngf=8, 6 blocks"),
        ("n_residual_blocks=5", "a paper generator with ngf=16, 5 blocks"),
        ("--n-residual-blocks=7", "a paper generator with ngf=16, 7 blocks"),
    ):
        assert run(OFFICIAL, photos, tmp_path / "other", option) == 2, option
        line = one_error_line(capsys)
        assert f"do not fit {built}" in line and "format=/variant=/ngf=" in line, line
    assert not (tmp_path / "other").exists()
