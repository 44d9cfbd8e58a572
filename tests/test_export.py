"""export: safetensors + JSON that translate loads without the training state, same outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan.checkpoints.file import CheckpointError, save_checkpoint
from cyclegan.inference import translate
from cyclegan.inference.export import export, main
from cyclegan.inference.importers import Direction, Format, load_generator
from cyclegan.methods.cyclegan_networks import CycleGANNetworks

from .conftest import build_networks

DATA = Path(__file__).parent / "data"


@pytest.fixture
def checkpoint(tmp_path: Path) -> tuple[Path, CycleGANNetworks]:
    torch.manual_seed(1)
    model = build_networks("paper", n_residual_blocks=2, ngf=8, ndf=8).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.1)
    config = {
        "model": {"variant": "paper", "ngf": 8, "n_residual_blocks": 2, "channels": 3},
        "dataset": {"name": "synthetic", "img_size": 32},
    }
    path = save_checkpoint(
        tmp_path / "run" / "checkpoints" / "last.pt",
        {"model": model.state_dict(), "config": config, "epoch": 2, "step": 12},
    )
    return path, model


def test_export_writes_safetensors_and_json(checkpoint, tmp_path: Path, capsys) -> None:
    ckpt, _ = checkpoint
    out = tmp_path / "exported"
    assert main([f"ckpt={ckpt}", f"output={out}"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "G_AB.json",
        "G_AB.safetensors",
        "G_BA.json",
        "G_BA.safetensors",
    ]
    info = json.loads((out / "G_BA.json").read_text())
    assert info["format"] == "cyclegan-generator"
    assert info["direction"] == "BtoA"
    assert info["architecture"] == {
        "channels": 3,
        "ngf": 8,
        "n_residual_blocks": 2,
        "upsampling": "transposed",
        "out_channels": 3,
        "variant": "paper",
    }
    assert info["io"].startswith("RGB in and out")
    assert info["source"]["step"] == 12 and info["source"]["dataset"] == "synthetic"
    # Ordinary file permissions for both (safetensors alone would create the weights as 0600).
    modes = {(out / name).stat().st_mode & 0o777 for name in ("G_AB.json", "G_AB.safetensors")}
    assert len(modes) == 1
    assert capsys.readouterr().out.split() == [
        str(out / "G_AB.safetensors"),
        str(out / "G_BA.safetensors"),
    ]


def test_round_trip_gives_the_original_outputs(checkpoint, tmp_path: Path) -> None:
    ckpt, model = checkpoint
    paths = export(ckpt, tmp_path / "exported")
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    for path, direction, original in zip(paths, Direction, (model.G_AB, model.G_BA), strict=True):
        loaded = load_generator(path)
        assert loaded.format is Format.exported and loaded.direction is direction
        with torch.no_grad():
            assert torch.equal(loaded.generator(x), original(x))
    # The header carries the same JSON, so the .safetensors alone is enough.
    (tmp_path / "exported" / "G_AB.json").unlink()
    alone = load_generator(paths[0])
    assert alone.spec.ngf == 8 and alone.direction is Direction.AtoB


def test_translate_with_export_equals_translate_with_checkpoint(checkpoint, tmp_path: Path) -> None:
    ckpt, _ = checkpoint
    export(ckpt, tmp_path / "exported")
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (45, 31, 3), dtype=np.uint8)).save(photos / "x.png")
    runs = {
        "ckpt": (ckpt, "BtoA"),
        "export": (tmp_path / "exported" / "G_BA.safetensors", None),
    }
    for name, (weights, direction) in runs.items():
        report = translate.translate(
            weights, photos, tmp_path / name, direction, device="cpu", progress=False
        )
        assert len(report.translated) == 1
    a = np.asarray(Image.open(tmp_path / "ckpt" / "x.png"))
    b = np.asarray(Image.open(tmp_path / "export" / "x.png"))
    assert a.shape == (45, 31, 3) and np.array_equal(a, b)


def test_export_refuses_the_wrong_direction(checkpoint, tmp_path: Path) -> None:
    ckpt, _ = checkpoint
    paths = export(ckpt, tmp_path / "exported", directions=["AtoB"])
    assert [p.name for p in paths] == ["G_AB.safetensors"]
    with pytest.raises(CheckpointError, match="is the AtoB generator but direction=BtoA"):
        load_generator(paths[0], "BtoA")


def test_official_file_converts_and_reproduces(tmp_path: Path) -> None:
    src = DATA / "official_latest_net_G_A_resnet6_ngf16_legacy.pth"
    (path,) = export(src, tmp_path)
    assert path.name == "generator.safetensors"
    io = torch.load(DATA / "io.pt", weights_only=True)["official_latest_net_G_A_resnet6_ngf16"]
    with torch.no_grad():
        out = load_generator(path).generator(io["input"])
    torch.testing.assert_close(out, io["output_eval"], atol=1e-5, rtol=1e-5)
