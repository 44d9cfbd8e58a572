"""One- and three-channel domains through the models, importers, export and translate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan.checkpoints.file import save_checkpoint
from cyclegan.inference.export import export
from cyclegan.inference.importers import Direction, Format, GeneratorSpec, load_generator
from cyclegan.inference.translate import to_tensor, translate
from cyclegan.parts.networks.resnet import Generator

from .conftest import build_networks

LAYOUTS = Path(__file__).parent / "data" / "reference-layouts"


def _nontrivial(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.1)
    return module.eval()


@pytest.mark.parametrize(("c_in", "c_out"), [(1, 1), (1, 3), (3, 1)])
@pytest.mark.parametrize("upsampling", ["nearest", "transposed"])
def test_generator_in_and_out_channels_keep_the_state_dict_keys(
    c_in: int, c_out: int, upsampling: str
) -> None:
    g = Generator(
        ngf=8, n_residual_blocks=1, upsampling=upsampling, in_channels=c_in, out_channels=c_out
    )
    rgb = Generator(3, ngf=8, n_residual_blocks=1, upsampling=upsampling)
    assert list(g.state_dict()) == list(rgb.state_dict())
    assert (g.in_channels, g.out_channels, g.channels) == (c_in, c_out, c_in)
    out = g(torch.randn(2, c_in, 16, 24))
    assert out.shape == (2, c_out, 16, 24)
    assert Generator(1, ngf=8, n_residual_blocks=1).out_channels == 1  # `channels` sets both


def test_container_builds_each_direction_and_discriminator_per_domain() -> None:
    model = build_networks("resnet", channels=(1, 3), ngf=8, ndf=8, n_residual_blocks=1)
    a, b = torch.randn(2, 1, 32, 32), torch.randn(2, 3, 32, 32)
    assert model.G_AB(a).shape == b.shape and model.G_BA(b).shape == a.shape
    assert model.G_BA(model.G_AB(a)).shape == a.shape  # the cycle closes
    assert model.D_A(a).shape == model.D_B(b).shape == (2, 1, 2, 2)
    with pytest.raises(RuntimeError):
        model.D_A(b)  # D_A reads domain A's single channel
    assert build_networks("resnet", ngf=8, ndf=8, n_residual_blocks=1).G_AB.in_channels == 3
    with pytest.raises(ValueError, match="channels must be an integer >= 1"):
        build_networks("resnet", channels=(3, 0))


def test_official_grayscale_generator_is_detected_from_its_weights() -> None:
    # Written by the official code: define_G(1, 1, 4, 'resnet_6blocks'), i.e. --input_nc 1
    # --output_nc 1, with the outputs it computed (tests/data/reference-layouts/README.md).
    path = LAYOUTS / "official_G_resnet6_ngf4_gray.pth"
    loaded = load_generator(path)
    assert loaded.format is Format.official
    assert loaded.spec == GeneratorSpec(1, 4, 6, "transposed", out_channels=1)
    io = torch.load(LAYOUTS / "io_reference_layouts.pt", weights_only=True)[path.stem]
    with torch.no_grad():
        out = loaded.generator(io["input"])
    torch.testing.assert_close(out, io["output_eval"], atol=1e-5, rtol=1e-5)


def test_checkpoint_directions_take_their_channels_from_the_weights(tmp_path: Path) -> None:
    model = _nontrivial(build_networks("paper", channels=(1, 3), n_residual_blocks=1, ngf=8, ndf=8))
    config = {"model": {"variant": "paper", "ngf": 8, "n_residual_blocks": 1, "channels": 3}}
    path = save_checkpoint(tmp_path / "last.pt", {"model": model.state_dict(), "config": config})
    ab, ba = load_generator(path, Direction.AtoB), load_generator(path, Direction.BtoA)
    assert (ab.spec.channels, ab.spec.out_channels) == (1, 3)
    assert (ba.spec.channels, ba.spec.out_channels) == (3, 1)
    x = torch.rand(1, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.equal(ab.generator(x), model.G_AB(x))

    exported = export(path, tmp_path / "exported")
    info = json.loads(exported[0].with_suffix(".json").read_text())
    assert info["architecture"]["channels"] == 1 and info["architecture"]["out_channels"] == 3
    assert info["io"].startswith("grayscale in, RGB out")
    again = load_generator(exported[0])
    assert again.spec == ab.spec
    with torch.no_grad():
        assert torch.equal(again.generator(x), model.G_AB(x))
    assert json.loads(exported[1].with_suffix(".json").read_text())["io"].startswith(
        "RGB in, grayscale out"
    )


@pytest.mark.parametrize(("c_in", "c_out"), [(1, 1), (3, 1), (1, 3)])
def test_translate_reads_and_writes_the_generators_channels(
    tmp_path: Path, c_in: int, c_out: int
) -> None:
    g = _nontrivial(Generator(ngf=8, n_residual_blocks=1, in_channels=c_in, out_channels=c_out))
    weights = tmp_path / f"generator_{c_in}to{c_out}.pth"  # our Generator's state dict
    torch.save(g.state_dict(), weights)
    photos = tmp_path / "in"
    photos.mkdir()
    rgb = np.random.default_rng(0).integers(0, 256, (20, 28, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(photos / "colour.png")  # a colour photo, whatever the model reads
    report = translate(weights, photos, tmp_path / "out", device="cpu", progress=False)
    assert len(report.translated) == 1
    written = Image.open(tmp_path / "out" / "colour.png")
    assert written.mode == ("L" if c_out == 1 else "RGB") and written.size == (28, 20)
    source = Image.fromarray(rgb).convert("L") if c_in == 1 else Image.fromarray(rgb)
    with torch.no_grad():
        expected = g(to_tensor(source)[None])[0]
    pixels = torch.from_numpy(np.asarray(written).copy()).float()
    pixels = pixels[None] if c_out == 1 else pixels.permute(2, 0, 1)
    reference = ((expected.clamp(-1, 1) + 1) * 127.5).round()
    assert torch.equal(pixels, reference)
