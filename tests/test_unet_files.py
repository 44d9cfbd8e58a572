"""Official U-Net checkpoints through the inference tools: detect, load, translate, export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan.inference import translate
from cyclegan.inference.export import export
from cyclegan.inference.importers import Format, GeneratorSpec, load_generator
from cyclegan.inference.tiling import pad_to_multiple

DATA = Path(__file__).parent / "data" / "unet"
TOL = {"atol": 1e-5, "rtol": 1e-5}


@pytest.fixture(scope="module")
def io() -> dict:
    return torch.load(DATA / "io_unet.pt", weights_only=True)


@pytest.mark.parametrize(
    ("name", "entry", "describe"),
    [
        ("official_G_unet128_ngf8.pth", "official_unet", "unet_128, ngf=8, instance norm"),
        (
            "official_G_unet128_ngf4_batch_dropout.pth",
            "official_unet_bn",
            "unet_128, ngf=4, batch norm",
        ),
    ],
)
def test_official_unet_files_are_detected_and_reproduce(
    name: str, entry: str, describe: str, io: dict
) -> None:
    loaded = load_generator(DATA / name)
    assert loaded.format is Format.official and loaded.spec.describe() == describe
    assert loaded.spec.size_multiple == 128 and not loaded.generator.training
    with torch.no_grad():
        out = loaded.generator(io[entry]["input"])
    torch.testing.assert_close(out, io[entry]["output_eval"], **TOL)


def _image(path: Path, size: tuple[int, int]) -> Image.Image:
    image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (*size, 3), np.uint8))
    image.save(path)
    return image


def test_translate_pads_to_the_unet_multiple_and_crops_back(tmp_path: Path) -> None:
    ckpt = DATA / "official_G_unet128_ngf8.pth"
    image = _image(tmp_path / "in.png", (70, 90))  # padded to 128 x 128 inside
    out = tmp_path / "out"
    args = [f"ckpt={ckpt}", f"input={tmp_path / 'in.png'}", f"output={out}", "progress=false"]
    assert translate.main([*args, "device=cpu"]) == 0
    got = np.asarray(Image.open(out / "in.png"), dtype=float)
    assert got.shape == (70, 90, 3)
    G = load_generator(ckpt).generator
    x = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 127.5 - 1
    padded = pad_to_multiple(x, 128)
    assert padded.shape[-2:] == (128, 128)
    with torch.no_grad():
        y = G(padded)[..., :70, :90][0]
    expected = ((y.clamp(-1, 1) + 1) * 127.5).round().permute(1, 2, 0).numpy()
    assert np.abs(got - expected).max() <= 1


def test_export_round_trip_keeps_architecture_and_outputs(tmp_path: Path, io: dict) -> None:
    ckpt = DATA / "official_G_unet128_ngf4_batch_dropout.pth"
    (path,) = export(ckpt, tmp_path / "exp")
    info = json.loads(path.with_suffix(".json").read_text())
    arch = info["architecture"]
    assert (arch["variant"], arch["num_downs"], arch["norm"], arch["ngf"]) == (
        "unet_128",
        7,
        "batch",
        4,
    )
    assert info["io"].endswith("any size divisible by 128")
    again = load_generator(path)
    assert again.format is Format.exported and again.spec == load_generator(ckpt).spec
    with torch.no_grad():
        out = again.generator(io["official_unet_bn"]["input"])
    torch.testing.assert_close(out, io["official_unet_bn"]["output_eval"], **TOL)


def test_spec_from_a_training_config_names_the_generator() -> None:
    spec = GeneratorSpec.from_dict({"generator": "unet_256", "ngf": 16, "norm": "batch"})
    assert (spec.num_downs, spec.norm, spec.variant, spec.size_multiple) == (
        8,
        "batch",
        "unet_256",
        256,
    )
    resnet = GeneratorSpec.from_dict({"variant": "paper", "ngf": 8, "n_residual_blocks": 2})
    assert (resnet.num_downs, resnet.variant, resnet.size_multiple) == (0, "paper", 4)


def test_evaluate_refuses_an_image_size_the_unet_cannot_take(tmp_path: Path, capsys) -> None:
    from cyclegan.inference import evaluate

    ckpt = DATA / "official_G_unet128_ngf8.pth"
    args = [f"ckpt={ckpt}", f"data={tmp_path / 'nowhere'}", "img_size=64", "direction=AtoB"]
    assert evaluate.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "error: a unet_128 generator needs img_size divisible by 128, got 64; pass img_size=128"
    )
