"""translate's `tile=N` (README, Translate): a generator that changes the channel count tiles too."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan.inference.tiling import run_padded, run_tiled
from cyclegan.inference.translate import to_tensor, translate
from cyclegan.parts.networks.resnet import Generator


def nontrivial_generator(norm: str, seed: int = 0, **kwargs: int) -> Generator:
    torch.manual_seed(seed)
    g = Generator(ngf=8, n_residual_blocks=1, norm=norm, **kwargs)
    with torch.no_grad():
        for name, p in g.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.1)
    return g.eval()


@pytest.mark.parametrize(("c_in", "c_out"), [(1, 3), (3, 1)])
def test_tiling_keeps_the_generators_output_channels(tmp_path: Path, c_in: int, c_out: int) -> None:
    g = nontrivial_generator("instance", in_channels=c_in, out_channels=c_out)
    x = torch.rand(1, c_in, 50, 41) * 2 - 1
    with torch.no_grad():
        assert run_tiled(g, x, 24, 8).shape == run_padded(g, x).shape == (1, c_out, 50, 41)
    weights = tmp_path / "generator.pth"
    torch.save(g.state_dict(), weights)
    photos = tmp_path / "in"
    photos.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (50, 41, 3), dtype=np.uint8)).save(
        photos / "x.png"
    )
    report = translate(weights, photos, tmp_path / "out", tile=24, tile_overlap=8, progress=False)
    assert len(report.translated) == 1
    written = Image.open(tmp_path / "out" / "x.png")
    assert written.mode == ("L" if c_out == 1 else "RGB") and written.size == (41, 50)
    assert to_tensor(written).shape[0] == c_out
