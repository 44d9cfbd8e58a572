"""translate's `tile=N` (README, Translate): tiled output equals the untiled one away from the
seams for a network without normalisation, instance norm's per-tile difference shrinks as tiles
grow ("keep tiles large"), and a generator that changes the channel count tiles too."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan.inference.tiling import run_padded, run_tiled
from cyclegan.inference.translate import main, to_tensor, translate
from cyclegan.parts.networks.resnet import Generator

TILE, OVERLAP = 96, 48
SIZE = (150, 182)  # H x W, neither a multiple of 4: padded to 152 x 184 like the untiled image


def nontrivial_generator(norm: str, seed: int = 0, **kwargs: int) -> Generator:
    torch.manual_seed(seed)
    g = Generator(ngf=8, n_residual_blocks=1, norm=norm, **kwargs)
    with torch.no_grad():
        for name, p in g.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.1)
    return g.eval()


def receptive_radius(generator: Generator, side: int = 96) -> int:
    """How far an output pixel sees: the support of its gradient, the widest over the four phases
    of the generator's stride-4 grid (the gradient of any pixel outside the field is exactly 0)."""
    radius = 0
    for phase in range(4):
        x = (torch.rand(1, 3, side, side) * 2 - 1).requires_grad_()
        p = side // 2 + phase
        generator(x)[0, :, p, p].sum().backward()
        rows, cols = (x.grad[0].abs().sum(0) > 0).nonzero(as_tuple=True)
        radius = max(radius, p - rows.min(), rows.max() - p, p - cols.min(), cols.max() - p)
    assert 0 < radius < side // 2 - 4  # not cut off by the probe's own borders
    return int(radius)


def tile_boxes(shape: tuple[int, int]) -> tuple[list[tuple[int, int, int, int]], tuple[int, int]]:
    """The (top, left, height, width) of every tile run_tiled cuts, observed by tiling an image of
    its own coordinates with an identity "generator"; and the padded size the tiles cover."""
    h, w = shape
    rows = torch.arange(h, dtype=torch.float32)[:, None].expand(h, w)
    cols = torch.arange(w, dtype=torch.float32)[None, :].expand(h, w)
    seen: list[tuple[int, int, int, int]] = []

    def spy(x: torch.Tensor) -> torch.Tensor:
        seen.extend((int(t[0, 0, 0]), int(t[1, 0, 0]), *t.shape[-2:]) for t in x)
        return x

    coords = torch.stack([rows, cols, torch.zeros(h, w)])[None]
    run_tiled(spy, coords, TILE, OVERLAP)
    padded = (max(t + th for t, _, th, _ in seen), max(lf + tw for _, lf, _, tw in seen))
    return seen, padded


def seam_band(
    boxes: list[tuple[int, int, int, int]], padded: tuple[int, int], r: int
) -> torch.Tensor:
    """True where a pixel lies within `r` of an inner edge (not the image's own border) of a tile
    that covers it: there the tile's border padding reaches the output, elsewhere it cannot."""
    band = torch.zeros(padded, dtype=torch.bool)
    for t, lf, th, tw in boxes:
        inside = torch.zeros(padded, dtype=torch.bool)
        inside[t : t + th, lf : lf + tw] = True
        near = torch.zeros(padded, dtype=torch.bool)
        if t > 0:
            near[t : t + r, :] = True
        if t + th < padded[0]:
            near[t + th - r : t + th, :] = True
        if lf > 0:
            near[:, lf : lf + r] = True
        if lf + tw < padded[1]:
            near[:, lf + tw - r : lf + tw] = True
        band |= inside & near
    return band


def test_tiles_start_on_the_stride_grid_and_cover_the_padded_image() -> None:
    boxes, padded = tile_boxes(SIZE)
    assert padded == (152, 184)  # the whole image padded to a multiple of 4, as untiled
    assert {(th, tw) for _, _, th, tw in boxes} == {(TILE, TILE)}
    assert all(t % 4 == 0 and lf % 4 == 0 for t, lf, _, _ in boxes)
    tops, lefts = sorted({b[0] for b in boxes}), sorted({b[1] for b in boxes})
    assert tops[-1] + TILE == padded[0] and lefts[-1] + TILE == padded[1]
    for starts in (tops, lefts):  # neighbours overlap by at least tile_overlap
        assert starts[0] == 0 and all(
            b - a <= TILE - OVERLAP for a, b in itertools.pairwise(starts)
        )


def test_tiled_equals_untiled_away_from_the_seams_without_normalisation() -> None:
    g = nontrivial_generator("none")
    r = receptive_radius(g)
    boxes, padded = tile_boxes(SIZE)
    band = seam_band(boxes, padded, r)[: SIZE[0], : SIZE[1]]
    overlap = torch.zeros(padded)
    for t, lf, th, tw in boxes:
        overlap[t : t + th, lf : lf + tw] += 1
    blended = (overlap[: SIZE[0], : SIZE[1]] > 1) & ~band
    assert blended.any()  # some pixels away from the seams are blends of two or more tiles
    x = torch.rand(1, 3, *SIZE, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        whole, tiled = run_padded(g, x), run_tiled(g, x, TILE, OVERLAP)
    diff = (tiled - whole).abs().amax(dim=1)[0]
    assert diff[~band].max() <= 1e-5
    assert diff[band].max() > 1e-3  # the band is where the tiles' borders show


def test_translate_tile_option_matches_untiled_files_away_from_seams(
    tmp_path: Path, monkeypatch
) -> None:
    import cyclegan.inference.translate as translate_module

    calls: list[tuple[int, int]] = []

    def recorded(generator, x, tile, overlap, batch_size=4):
        calls.append((tile, overlap))
        return run_tiled(generator, x, tile, overlap, batch_size)

    monkeypatch.setattr(translate_module, "run_tiled", recorded)
    g = nontrivial_generator("none")
    weights = tmp_path / "generator_no_norm.pth"  # our Generator's state dict, no norm layers
    torch.save(g.state_dict(), weights)
    photos = tmp_path / "in"
    photos.mkdir()
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, (*SIZE, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(photos / "big.png")
    common = [f"ckpt={weights}", f"input={photos}", "progress=false", "device=cpu"]
    assert main([*common, f"output={tmp_path / 'whole'}"]) == 0
    assert calls == []
    assert main([*common, f"output={tmp_path / 'tiled'}", f"tile={TILE}", f"tile_overlap={OVERLAP}"]) == 0  # fmt: skip
    whole = np.asarray(Image.open(tmp_path / "whole" / "big.png"), dtype=int)
    tiled = np.asarray(Image.open(tmp_path / "tiled" / "big.png"), dtype=int)
    assert whole.shape == tiled.shape == (*SIZE, 3)
    boxes, padded = tile_boxes(SIZE)
    band = seam_band(boxes, padded, receptive_radius(g))[: SIZE[0], : SIZE[1]].numpy()
    diff = np.abs(whole - tiled).max(axis=2)
    assert diff[~band].max() <= 1  # 8-bit rounding of values equal to 1e-5
    assert calls == [(TILE, OVERLAP)]  # tile= and tile_overlap= reached the tiling


def test_instance_norm_tiles_come_closer_to_untiled_as_they_grow() -> None:
    """Each tile is normalised by its own statistics, so tiling changes the output everywhere;
    larger tiles' statistics approach the whole image's (the README: keep tiles large)."""
    g = nontrivial_generator("instance")
    x = torch.rand(1, 3, 192, 192, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        whole = run_padded(g, x)
        errors = [(run_tiled(g, x, t, t // 4) - whole).abs().mean().item() for t in (32, 64, 128)]
    assert errors[0] > errors[1] > errors[2] > 0


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
