"""Running a generator on images of any size: reflection padding to its stride, and overlapping
tiles blended with linear ramps for images too large to translate at once (bounded memory).

Tiles are cut from the image padded as a whole (as `run_padded` pads it) and start on the
generator's stride grid (multiples of `size_multiple`: 4 for the ResNets), so each tile sees the
pixels and the downsampling grid the whole image would. A network without normalisation then gives
the untiled output everywhere except within its receptive field of a tile's inner edge, where the
tile's own border padding shows (tests/test_tiling.py). Instance norm normalises per tile, so
colours can shift slightly between tiles; keep tiles large (512+) for real photos.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

__all__ = ["pad_to_multiple", "run_padded", "run_tiled"]

_MIN_SIDE = 8  # the generator's reflection pads need >= 2 pixels at 1/4 resolution


def pad_to_multiple(x: torch.Tensor, multiple: int = 4) -> torch.Tensor:
    """Pad (B, C, H, W) on the bottom/right to a multiple of `multiple` (and >= 8 px) by reflection.

    Reflection keeps the border statistics close to the image's; sides too short to reflect (under
    4 px) are padded by replication instead.
    """
    h, w = x.shape[-2:]
    new_h = max(_MIN_SIDE, -(-h // multiple) * multiple)
    new_w = max(_MIN_SIDE, -(-w // multiple) * multiple)
    pad_h, pad_w = new_h - h, new_w - w
    if pad_h == 0 and pad_w == 0:
        return x
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


def run_padded(generator: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Generator output at the input's exact size: pad, translate, crop back.

    Padded to the generator's `size_multiple` (4 for the ResNets, 2^num_downs for a U-Net).
    """
    h, w = x.shape[-2:]
    multiple = getattr(generator, "size_multiple", 4)
    return generator(pad_to_multiple(x, multiple))[..., :h, :w]


def _tile_side(length: int, tile: int, multiple: int) -> int:
    """The tile's side along one axis: the whole (padded) length if it fits, else `tile` rounded
    down to the stride grid (kept as it is when smaller than one grid step, e.g. a U-Net's 256)."""
    if length <= tile:
        return length
    return tile // multiple * multiple or tile


def _starts(length: int, side: int, overlap: int, multiple: int) -> list[int]:
    """Tile starts every `side - overlap` pixels, rounded down to the stride grid when the tiles
    fit it (the overlap only grows), the last tile ending at `length`."""
    if length <= side:
        return [0]
    step = side - overlap
    if side % multiple == 0 and length % multiple == 0:
        step = max(multiple, step // multiple * multiple)
    return [*range(0, length - side, step), length - side]


def _ramp(length: int, overlap: int, device: torch.device) -> torch.Tensor:
    # Positive everywhere (a lone tile divides by its own weight), rising over `overlap` pixels.
    i = torch.arange(length, device=device, dtype=torch.float32)
    return torch.minimum((i + 1) / (overlap + 1), (length - i) / (overlap + 1)).clamp(max=1.0)


def run_tiled(
    generator: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    tile: int,
    overlap: int,
    batch_size: int = 4,
) -> torch.Tensor:
    """Translate (1, C, H, W) in overlapping tile x tile windows, blended by linear ramps.

    The image is padded as a whole first and the tiles start on the stride grid, so a tile's
    pixels away from its inner edges are those of the untiled translation (without normalisation).
    """
    _, _, h, w = x.shape
    multiple = getattr(generator, "size_multiple", 4)
    padded = pad_to_multiple(x, multiple)
    ph, pw = padded.shape[-2:]
    th, tw = _tile_side(ph, tile, multiple), _tile_side(pw, tile, multiple)
    boxes = [
        (top, left)
        for top in _starts(ph, th, overlap, multiple)
        for left in _starts(pw, tw, overlap, multiple)
    ]
    weight = _ramp(th, overlap, x.device)[:, None] * _ramp(tw, overlap, x.device)[None, :]
    out: torch.Tensor | None = None
    total = torch.zeros(1, 1, ph, pw, device=x.device)
    for i in range(0, len(boxes), batch_size):
        chunk = boxes[i : i + batch_size]
        tiles = torch.cat([padded[..., t : t + th, lft : lft + tw] for t, lft in chunk])
        y = run_padded(generator, tiles).float()
        if out is None:  # the generator's output channels (a grayscale model from RGB, ...)
            out = torch.zeros(1, y.shape[1], ph, pw, device=x.device)
        for (t, lft), y_tile in zip(chunk, y, strict=True):
            out[..., t : t + th, lft : lft + tw] += y_tile * weight
            total[..., t : t + th, lft : lft + tw] += weight
    assert out is not None
    return (out / total)[..., :h, :w]
