"""Built-in summer→winter dataset: procedural landscapes rendered in two seasons.

Every scene is a frozen :class:`SceneParams` drawn from a seeded numpy generator; the summer
and winter images are two deterministic renders of the same parameters, so the geometry is
identical and the test split has exact ground-truth pairs. Geometry lives in normalised
coordinates (x right, y down, both in [0, 1]) so a scene looks the same at any size, and all
drawing is vectorised numpy (soft, one-pixel anti-aliased edges), fast enough to regenerate
the whole dataset in seconds instead of shipping image files.

``python -m cyclegan.data.synthetic --root data/preview --size 128 --n-train 8 --n-test 4``
writes a small copy to look at.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import pathlib
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

__all__ = [
    "Cloud",
    "Lake",
    "Ridge",
    "SceneParams",
    "Season",
    "SyntheticLandscapes",
    "Tree",
    "contact_sheet",
    "main",
    "render_pair",
    "render_scene",
    "sample_scene",
    "scene_rng",
]

Season = Literal["summer", "winter"]
Colour = tuple[float, float, float]

FORMAT_NAME = "cyclegan-synthetic-landscapes"
FORMAT_VERSION = 1
MANIFEST_NAME = "synthetic.json"

# Split ids feed the per-scene RNG so the three scene sets never share a seed sequence.
SPLIT_TRAIN_A = 0
SPLIT_TRAIN_B = 1
SPLIT_TEST = 2

# Fixed winter palette (linear-ish RGB in [0, 1]).
_SNOW = np.array([0.94, 0.955, 0.975], np.float32)
_SNOW_SHADE = np.array([0.74, 0.79, 0.88], np.float32)
_WINTER_SKY_MIX = np.array([0.86, 0.89, 0.93], np.float32)
_ICE = np.array([0.66, 0.8, 0.9], np.float32)
_WINTER_ROCK = np.array([0.36, 0.37, 0.41], np.float32)

_PROFILE_GRID = np.linspace(0.0, 1.0, 257, dtype=np.float64)  # size-independent normalisation


# --------------------------------------------------------------------------------------------
# Scene parameters
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ridge:
    """One mountain ridge: a 1-D height profile above ``base`` plus its snowlines."""

    base: float  # y of the ridge foot
    height: float  # largest rise above the foot
    floor: float  # fraction of ``height`` at the lowest point of the profile
    freqs: tuple[float, ...]  # cycles per image width
    amps: tuple[float, ...]
    phases: tuple[float, ...]
    peaky: tuple[bool, ...]  # component uses 1-|sin| (sharp peaks) instead of sin
    snow_summer: float  # fraction of ``height`` above which summer snow lies (>1: none)
    snow_winter: float  # much lower winter snowline
    rock: Colour  # summer rock colour before haze
    haze: float  # 0 (near) .. 1 (far): mix towards the sky colour


@dataclass(frozen=True)
class Tree:
    """A conifer: stacked triangular tiers on a short trunk, standing at (x, base)."""

    x: float
    base: float
    height: float
    width: float
    tiers: int
    colour: Colour  # summer needle colour


@dataclass(frozen=True)
class Lake:
    """Water: an ellipse, or a band across the image when ``rx`` is large; wavy shore."""

    cx: float
    cy: float
    rx: float
    ry: float
    wave_amp: float
    wave_freq: float
    wave_phase: float
    colour: Colour  # summer water colour


@dataclass(frozen=True)
class Cloud:
    """A cloud: union of soft ellipses ``(cx, cy, rx, ry)``."""

    blobs: tuple[tuple[float, float, float, float], ...]


@dataclass(frozen=True)
class SceneParams:
    """Everything that defines one landscape; both seasons are rendered from it."""

    texture_seed: int  # seeds the texture noise, identical in both seasons
    sky_top: Colour
    sky_bottom: Colour
    sun_x: float
    sun_y: float
    sun_r: float
    horizon: float
    horizon_wave: tuple[float, float, float]  # amplitude, frequency, phase
    grass_near: Colour
    grass_far: Colour
    ridges: tuple[Ridge, ...]
    lake: Lake | None
    trees: tuple[Tree, ...]
    clouds: tuple[Cloud, ...]


def scene_rng(seed: int, split: int, index: int) -> np.random.Generator:
    """Per-scene generator: independent of how many scenes a split has, disjoint across splits."""
    return np.random.default_rng([seed, split, index])


def _colour(rng: np.random.Generator, lo: Sequence[float], hi: Sequence[float]) -> Colour:
    u = rng.random(3).tolist()  # plain floats: numpy on 3-tuples is 10x slower here
    return (
        lo[0] + (hi[0] - lo[0]) * u[0],
        lo[1] + (hi[1] - lo[1]) * u[1],
        lo[2] + (hi[2] - lo[2]) * u[2],
    )


def _sample_ridges(rng: np.random.Generator, horizon: float) -> tuple[Ridge, ...]:
    n = int(rng.integers(1, 4))
    ridges = []
    for i in range(n):
        # t: 0 = farthest (tallest, hazy) .. 1 = nearest (lower, crisp).
        t = i / (n - 1) if n > 1 else float(rng.uniform(0.5, 1.0))
        room = horizon - 0.06
        height = room * float(rng.uniform(0.55, 0.95)) * (1.0 - 0.4 * t)
        k = int(rng.integers(3, 6))
        freqs = rng.uniform(0.4, 1.4, k) * 6.0 ** (np.arange(k) / (k - 1))  # octave-ish spread
        amps = rng.uniform(0.6, 1.0, k) / freqs**0.9
        peaky = rng.random(k) < 0.6
        peaky[0] = True
        snow_summer = float(rng.uniform(0.8, 0.95)) if rng.random() < 0.8 else 1.2
        ridges.append(
            Ridge(
                base=horizon + 0.01 * i,
                height=height,
                floor=float(rng.uniform(0.05, 0.45)),
                freqs=tuple(float(f) for f in freqs),
                amps=tuple(float(a) for a in amps),
                phases=tuple(float(p) for p in rng.uniform(0, 2 * np.pi, k)),
                peaky=tuple(bool(p) for p in peaky),
                snow_summer=snow_summer,
                snow_winter=float(rng.uniform(0.3, 0.45)),
                rock=_colour(rng, (0.40, 0.36, 0.30), (0.55, 0.48, 0.42)),
                haze=0.6 * (1.0 - t),
            )
        )
    return tuple(ridges)


def _sample_lake(rng: np.random.Generator, horizon: float) -> Lake | None:
    u = rng.random()
    colour = _colour(rng, (0.08, 0.22, 0.40), (0.18, 0.36, 0.55))
    wave = (
        float(rng.uniform(0.0, 0.015)),
        float(rng.uniform(1.0, 4.0)),
        float(rng.uniform(0, 6.3)),
    )
    if u < 0.45:  # ellipse
        ry = float(rng.uniform(0.04, 0.1))
        cy = float(rng.uniform(horizon + ry + 0.02, 0.95))
        rx = float(rng.uniform(0.15, 0.4))
        return Lake(float(rng.uniform(0.15, 0.85)), cy, rx, ry, *wave, colour)
    if u < 0.7:  # band across the whole width
        ry = float(rng.uniform(0.035, 0.08))
        cy = float(rng.uniform(horizon + ry + 0.04, 0.9))
        return Lake(0.5, cy, 8.0, ry, *wave, colour)
    return None


def _in_lake(lake: Lake | None, x: float, y: float, margin: float) -> bool:
    if lake is None:
        return False
    cy = lake.cy + lake.wave_amp * np.sin(2 * np.pi * lake.wave_freq * x + lake.wave_phase)
    q = ((x - lake.cx) / (lake.rx + margin)) ** 2 + ((y - cy) / (lake.ry + margin)) ** 2
    return bool(q < 1.0)


def _sample_trees(rng: np.random.Generator, horizon: float, lake: Lake | None) -> tuple[Tree, ...]:
    n = int(rng.integers(0, 14)) if rng.random() < 0.85 else 0
    clustered = rng.random() < 0.5
    centres = rng.uniform(0.0, 1.0, 3)
    trees = []
    for _ in range(n):
        for _attempt in range(8):
            if clustered:
                x = float(centres[rng.integers(3)] + rng.normal(0.0, 0.08))
            else:
                x = float(rng.uniform(-0.05, 1.05))
            base = float(horizon + 0.03 + (1.02 - horizon - 0.03) * rng.random())
            if not _in_lake(lake, x, base, 0.03):
                break
        else:
            continue
        depth = (base - horizon) / (1.0 - horizon)
        height = (0.07 + 0.25 * depth) * float(rng.uniform(0.75, 1.25))
        trees.append(
            Tree(
                x=x,
                base=base,
                height=height,
                width=height * float(rng.uniform(0.38, 0.55)),
                tiers=int(rng.integers(1, 4)),
                colour=_colour(rng, (0.05, 0.20, 0.08), (0.14, 0.32, 0.16)),
            )
        )
    trees.sort(key=lambda tr: tr.base)  # paint far trees first
    return tuple(trees)


def _sample_clouds(rng: np.random.Generator, horizon: float) -> tuple[Cloud, ...]:
    clouds = []
    for _ in range(int(rng.integers(0, 4))):
        cx = float(rng.uniform(0.0, 1.0))
        cy = float(rng.uniform(0.06, max(0.08, horizon - 0.3)))
        w = float(rng.uniform(0.1, 0.25))
        blobs = []
        for _b in range(int(rng.integers(3, 6))):
            rx = w * float(rng.uniform(0.25, 0.45))
            blobs.append(
                (
                    cx + w * float(rng.uniform(-0.5, 0.5)),
                    cy - w * float(rng.uniform(-0.03, 0.12)),
                    rx,
                    rx * float(rng.uniform(0.4, 0.6)),
                )
            )
        clouds.append(Cloud(tuple(blobs)))
    return tuple(clouds)


def sample_scene(rng: np.random.Generator) -> SceneParams:
    """Draw one random landscape; the generator fully determines the scene."""
    horizon = float(rng.uniform(0.5, 0.68))
    texture_seed = int(rng.integers(0, 2**31 - 1))
    sky_top = _colour(rng, (0.12, 0.35, 0.70), (0.30, 0.52, 0.92))
    sky_bottom = _colour(rng, (0.55, 0.72, 0.88), (0.72, 0.86, 0.98))
    sun_x = float(rng.uniform(0.08, 0.92))
    sun_y = float(rng.uniform(0.08, horizon - 0.22))
    sun_r = float(rng.uniform(0.035, 0.06))
    wave = rng.uniform((0.0, 0.5, 0.0), (0.02, 2.5, 6.3))
    horizon_wave = (float(wave[0]), float(wave[1]), float(wave[2]))
    grass_near = _colour(rng, (0.20, 0.38, 0.08), (0.42, 0.55, 0.18))
    grass_far = _colour(rng, (0.40, 0.55, 0.22), (0.58, 0.66, 0.34))
    ridges = _sample_ridges(rng, horizon)
    lake = _sample_lake(rng, horizon)
    trees = _sample_trees(rng, horizon, lake)
    clouds = _sample_clouds(rng, horizon)
    return SceneParams(
        texture_seed=texture_seed,
        sky_top=sky_top,
        sky_bottom=sky_bottom,
        sun_x=sun_x,
        sun_y=sun_y,
        sun_r=sun_r,
        horizon=horizon,
        horizon_wave=horizon_wave,
        grass_near=grass_near,
        grass_far=grass_far,
        ridges=ridges,
        lake=lake,
        trees=trees,
        clouds=clouds,
    )


# --------------------------------------------------------------------------------------------
# Rendering helpers
# --------------------------------------------------------------------------------------------


def _interp_weights(n_grid: int, coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left grid index and smoothstep weight of each pixel coordinate on an ``n_grid`` lattice."""
    u = np.clip(coords, 0.0, 1.0) * (n_grid - 1)
    i0 = np.minimum(np.floor(u).astype(np.int64), n_grid - 2)
    t = (u - i0).astype(np.float32)
    return i0, t * t * (3.0 - 2.0 * t)


class _Noise:
    """Resolution-independent fractal value noise; grids drawn in a fixed order per scene.

    Interpolation is gather + lerp rather than a matrix product: multithreaded BLAS on tiny
    matrices made rendering ~100x slower on a busy machine (e.g. beside DataLoader workers).
    """

    def __init__(self, seed: int, coords: np.ndarray) -> None:
        self._rng = np.random.default_rng(seed)
        self._coords = coords
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _w(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        if n not in self._cache:
            self._cache[n] = _interp_weights(n, self._coords)
        return self._cache[n]

    def _lerp_cols(self, g: np.ndarray) -> np.ndarray:
        i0, t = self._w(g.shape[-1])
        a, b = g[..., i0], g[..., i0 + 1]
        return a + (b - a) * t

    def field(self, grids: Sequence[tuple[int, int]], gain: float = 0.55) -> np.ndarray:
        """Sum of octaves ``(rows, cols)``, normalised to roughly unit standard deviation."""
        out = np.zeros((self._coords.size, self._coords.size), np.float32)
        amp, total = 1.0, 0.0
        for gy, gx in grids:
            g = self._rng.standard_normal((gy, gx)).astype(np.float32)
            rows = self._lerp_cols(g)  # (gy, W)
            i0, t = self._w(gy)
            a, b = rows[i0], rows[i0 + 1]
            b -= a
            b *= t[:, None]
            b += a
            b *= np.float32(amp)
            out += b
            total += amp * amp
            amp *= gain
        return out / np.float32(np.sqrt(total) * 0.75)

    def line(self, n: int) -> np.ndarray:
        """1-D noise along x (shape ``(1, size)``)."""
        g = self._rng.standard_normal(n).astype(np.float32)
        return self._lerp_cols(g)[None, :]


def _cov(d: np.ndarray, size: int) -> np.ndarray:
    """Coverage from a signed distance (normalised units, > 0 inside): a one-pixel ramp."""
    a = d * np.float32(size) + np.float32(0.5)
    return np.minimum(np.maximum(a, 0.0, out=a), 1.0, out=a)


def _paint(img: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> None:
    """Alpha-composite ``colour`` (RGB vector or per-pixel image) over ``img`` in place."""
    delta = colour - img
    delta *= alpha[..., None]
    img += delta


def _mix(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    return (a + (b - a) * np.float32(t)).astype(np.float32)


def _rgb(c: Colour) -> np.ndarray:
    return np.asarray(c, np.float32)


@functools.lru_cache(maxsize=1024)
def _profile_range(r: Ridge) -> tuple[float, float]:
    """Min and max of the raw profile on a fixed grid: normalisation independent of image size."""
    ref, _ = _raw_profile(r, _PROFILE_GRID)
    return float(ref.min()), float(ref.max())


def _raw_profile(r: Ridge, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.zeros_like(xs)
    dp = np.zeros_like(xs)
    for f, a, ph, pk in zip(r.freqs, r.amps, r.phases, r.peaky, strict=True):
        arg = np.pi * f * xs + ph
        sin, cos = np.sin(arg), np.cos(arg)
        if pk:  # 1 - |sin|: sharp peaks, rounded valleys
            p += a * (1.0 - np.abs(sin))
            dp -= a * np.pi * f * np.sign(sin) * cos
        else:
            p += a * sin
            dp += a * np.pi * f * cos
    return p, dp


def _ridge_profile(r: Ridge, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rise above the foot (fraction of height, in [floor, 1]) and its x-derivative."""
    lo, hi = _profile_range(r)
    p, dp = _raw_profile(r, x.astype(np.float64))
    scale = (1.0 - r.floor) / max(hi - lo, 1e-9)
    rise = r.floor + (p - lo) * scale
    return np.clip(rise, 0.0, 1.0).astype(np.float32), (dp * scale).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


@dataclass
class _Frame:
    """The image being painted plus what every layer needs: coordinates and shared textures."""

    img: np.ndarray  # (size, size, 3) float32 in [0, 1]
    x: np.ndarray  # (1, size) pixel-centre x
    y: np.ndarray  # (size, 1) pixel-centre y
    size: int
    winter: bool
    light: float  # +1: sun on the left, lighting left-facing slopes; -1: the other way
    n_ground: np.ndarray
    n_patch: np.ndarray
    n_rock: np.ndarray
    n_water: np.ndarray
    n_sky: np.ndarray

    def window(self, x0: float, x1: float, y0: float, y1: float) -> tuple[slice, slice] | None:
        """Pixel slices covering a normalised box (plus a pixel of margin); None if off-image."""
        s = self.size
        c0, c1 = max(int(np.floor(x0 * s)) - 1, 0), min(int(np.ceil(x1 * s)) + 1, s)
        r0, r1 = max(int(np.floor(y0 * s)) - 1, 0), min(int(np.ceil(y1 * s)) + 1, s)
        if c0 >= c1 or r0 >= r1:
            return None
        return slice(r0, r1), slice(c0, c1)


def _draw_sun(f: _Frame, p: SceneParams) -> None:
    """Glow + disc; the winter sun is smaller, paler and weaker."""
    if f.winter:
        r_sun, col, glow_r, glow_a = 0.65 * p.sun_r, (1.0, 0.98, 0.88), 2.5, 0.18
    else:
        r_sun, col, glow_r, glow_a = p.sun_r, (1.0, 0.9, 0.35), 3.0, 0.35
    reach = 2.2 * glow_r * r_sun
    win = f.window(p.sun_x - reach, p.sun_x + reach, p.sun_y - reach, p.sun_y + reach)
    if win is None:
        return
    rs, cs = win
    d = np.sqrt((f.x[:, cs] - p.sun_x) ** 2 + (f.y[rs] - p.sun_y) ** 2)
    view = f.img[rs, cs]
    _paint(view, glow_a * np.exp(-((d / (glow_r * r_sun)) ** 2)), _rgb(col))
    _paint(view, _cov(r_sun - d, f.size), _rgb(col))


def _draw_cloud(f: _Frame, cloud: Cloud) -> None:
    """Union of soft ellipses, greyer underneath."""
    box = np.array([(cx - rx, cx + rx, cy - ry, cy + ry) for cx, cy, rx, ry in cloud.blobs])
    win = f.window(box[:, 0].min(), box[:, 1].max(), box[:, 2].min(), box[:, 3].max())
    if win is None:
        return
    rs, cs = win
    xs, ys = f.x[:, cs], f.y[rs]
    alpha = np.zeros((ys.shape[0], xs.shape[1]), np.float32)
    for cx, cy, rx, ry in cloud.blobs:
        q = np.sqrt(((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2)
        np.maximum(alpha, np.clip((1.0 - q) * 2.5, 0.0, 1.0), out=alpha)
    cy0 = float(np.mean([b[1] for b in cloud.blobs]))
    under = np.clip((ys - cy0) / 0.05, 0.0, 1.0)[..., None]
    if f.winter:
        lit, shade = _rgb((0.94, 0.95, 0.96)), _rgb((0.76, 0.78, 0.82))
    else:
        lit, shade = _rgb((1.0, 1.0, 1.0)), _rgb((0.8, 0.82, 0.88))
    _paint(f.img[rs, cs], 0.92 * alpha, lit + (shade - lit) * under)


def _draw_ridge(
    f: _Frame, ridge: Ridge, n_line: np.ndarray, haze_col: np.ndarray, y_end: float
) -> None:
    """Rock with slope shading and shared texture, snow above a (season-dependent) snowline."""
    c = f.x[0]
    rise, drise = _ridge_profile(ridge, c)
    rise, drise = rise[None, :], drise[None, :]
    top_y = ridge.base - ridge.height * rise
    win = f.window(0.0, 1.0, float(top_y.min()), y_end)
    if win is None:
        return
    rs, _ = win
    ys, n_rock = f.y[rs], f.n_rock[rs]
    slope = ridge.height * drise
    alpha = _cov((ys - top_y) / np.sqrt(1.0 + slope**2), f.size)
    below = np.clip((ys - top_y) / (0.6 * ridge.height), 0.0, 1.0)
    shade = 1.0 + 0.2 * np.tanh(1.5 * f.light * slope) * (1.0 - 0.6 * below)
    rock = _rgb(ridge.rock)
    if f.winter:
        rock = _mix(rock, _WINTER_ROCK, 0.6) * np.float32(0.85)
    rock_px = rock * (shade * (1.0 + 0.07 * n_rock))[..., None]
    rel = (ridge.base - ys) / ridge.height  # 0 at the foot, 1 at the highest peak
    line = (ridge.snow_winter if f.winter else ridge.snow_summer) + 0.05 * n_line + 0.025 * n_rock
    snow_alpha = _cov((rel - line) * ridge.height, f.size)
    # Snow is brightest at the crest so overlapping snowy ridges keep a visible outline.
    snow_k = (0.86 + 0.14 * shade) * (1.0 - 0.12 * below) - 0.03 * n_rock
    snow_px = _SNOW * snow_k[..., None]
    snow_px -= rock_px
    snow_px *= snow_alpha[..., None]
    col = rock_px
    col += snow_px  # rock where bare, snow above the snowline
    haze = ridge.haze * (0.5 if f.winter else 1.0)  # pale winter air: keep snowy ridges visible
    col *= np.float32(1.0 - haze)
    col += haze_col * np.float32(haze)  # atmospheric perspective
    _paint(f.img[rs], alpha, col)


def _draw_ground(f: _Frame, p: SceneParams) -> None:
    """Grass (summer) or snow (winter) below a gently wavy horizon, same texture in both."""
    amp, freq, phase = p.horizon_wave
    win = f.window(0.0, 1.0, p.horizon - amp, 1.0)
    if win is None:
        return
    rs, _ = win
    ys = f.y[rs]
    horizon_y = p.horizon + amp * np.sin(2 * np.pi * freq * f.x + phase)
    alpha = _cov(ys - horizon_y, f.size)
    depth = np.clip((ys - p.horizon) / (1.0 - p.horizon), 0.0, 1.0)[..., None]
    n_ground, n_patch = f.n_ground[rs], f.n_patch[rs]
    if f.winter:
        texture = 0.14 * n_ground + 0.2 * np.minimum(n_patch, 0.0)
        ground = _SNOW + (_SNOW_SHADE - _SNOW) * (0.35 * depth)
        ground = ground + texture[..., None] * (_SNOW - _SNOW_SHADE)
    else:
        far, near = _rgb(p.grass_far), _rgb(p.grass_near)
        ground = far + (near - far) * depth
        ground = ground * (1.0 + 0.08 * n_ground + 0.1 * np.minimum(n_patch, 0.0))[..., None]
    _paint(f.img[rs], alpha, ground)


def _draw_lake(f: _Frame, p: SceneParams, lk: Lake) -> None:
    """Wavy-shored ellipse or band: open water in summer (darker than the sky), ice in winter."""
    reach = lk.ry + lk.wave_amp
    win = f.window(lk.cx - lk.rx, lk.cx + lk.rx, lk.cy - reach, lk.cy + reach)
    if win is None:
        return
    rs, cs = win
    xs, ys = f.x[:, cs], f.y[rs]
    cy = lk.cy + lk.wave_amp * np.sin(2 * np.pi * lk.wave_freq * xs + lk.wave_phase)
    dx, dy = (xs - lk.cx) / lk.rx, (ys - cy) / lk.ry
    q = np.sqrt(dx * dx + dy * dy) + 1e-6
    grad = np.sqrt((dx / lk.rx) ** 2 + (dy / lk.ry) ** 2) / q + 1e-6
    alpha = _cov((1.0 - q) / grad, f.size)  # ≈ signed distance to the shore
    across = np.clip(0.5 + 0.5 * dy, 0.0, 1.0)[..., None]  # 0 far shore, 1 near shore
    n_water = f.n_water[rs, cs][..., None]
    if f.winter:
        water = _ICE + np.float32(0.06) * (1.0 - across)
        water = water + 0.035 * n_water * _rgb((-1.0, -0.6, -0.2))
    else:
        deep = _rgb(lk.colour)
        shallow = _mix(deep, _rgb(p.sky_bottom), 0.25)
        water = (shallow + (deep - shallow) * across) * (1.0 + 0.08 * n_water)
    _paint(f.img[rs, cs], alpha, water)


def _draw_tree(f: _Frame, tree: Tree) -> None:
    """A conifer painted into its bounding box; winter adds a snow cap on every tier."""
    half = tree.width / 2
    top = tree.base - tree.height
    win = f.window(tree.x - half, tree.x + half, top, tree.base)
    if win is None:
        return
    rs, cs = win
    view = f.img[rs, cs]
    xs, ys = f.x[:, cs] - tree.x, f.y[rs]
    cone_h = tree.height * 0.85
    # Trunk.
    tw = tree.width * 0.09
    d = np.minimum(tw - np.abs(xs), np.minimum(ys - (top + cone_h * 0.9), tree.base - ys))
    trunk = _rgb((0.22, 0.15, 0.09) if f.winter else (0.36, 0.23, 0.12))
    _paint(view, _cov(d, f.size), trunk)
    # Tiers, top to bottom so each lower tier overlaps the one above.
    leaf = _rgb(tree.colour)
    if f.winter:
        leaf = _mix(leaf, _rgb((0.12, 0.15, 0.15)), 0.5) * np.float32(0.85)
    leaf_px = leaf * (1.0 + 0.18 * np.sign(-f.light * xs))[..., None]  # sunlit half brighter
    n = tree.tiers
    for j in range(n):
        t_top = top + cone_h * 0.55 * j / n
        t_bot = top + cone_h * (0.45 + 0.55 * (j + 1) / n)
        hw = half * (0.55 + 0.45 * (j + 1) / n)
        h = t_bot - t_top
        s = hw / h
        d_side = (s * (ys - t_top) - np.abs(xs)) * np.float32(1.0 / np.sqrt(1.0 + s * s))
        _paint(view, _cov(np.minimum(d_side, t_bot - ys), f.size), leaf_px)
        if f.winter:  # snow cap: the tier's tip down to a zig-zag line
            cap = t_top + h * (0.42 + 0.08 * np.sin(xs * (2 * np.pi * 4.0 / hw)))
            _paint(view, _cov(np.minimum(d_side, cap - ys), f.size), _SNOW * np.float32(0.97))


def render_scene(params: SceneParams, season: Season, size: int) -> np.ndarray:
    """Render one season of a scene as a ``(size, size, 3)`` uint8 RGB array."""
    if season not in ("summer", "winter"):
        raise ValueError(f"season must be 'summer' or 'winter', got {season!r}")
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    p = params
    winter = season == "winter"
    c = ((np.arange(size, dtype=np.float32) + 0.5) / size).astype(np.float32)
    noise = _Noise(p.texture_seed, c)
    # Every noise field is drawn up front, in a fixed order: both seasons get identical texture.
    n_ground = noise.field([(4, 4), (8, 8), (16, 16), (32, 32)])
    n_patch = noise.field([(6, 6), (12, 12)])
    n_rock = noise.field([(8, 16), (16, 32), (32, 64)], gain=0.6)
    n_water = noise.field([(24, 4), (48, 8)], gain=0.6)
    n_lines = [noise.line(12) for _ in p.ridges]
    n_sky = noise.field([(4, 4), (8, 8)])

    # Sky: vertical gradient (winter: washed-out, pale grey-blue).
    top, bottom = _rgb(p.sky_top), _rgb(p.sky_bottom)
    if winter:
        top, bottom = _mix(top, _WINTER_SKY_MIX, 0.72), _mix(bottom, _WINTER_SKY_MIX, 0.8)
    t = np.clip(c[:, None] / max(p.horizon, 1e-3), 0.0, 1.0)[..., None]
    img = np.empty((size, size, 3), np.float32)
    img[...] = top + (bottom - top) * t
    img += (0.012 * n_sky)[..., None]

    f = _Frame(
        img=img,
        x=c[None, :],
        y=c[:, None],
        size=size,
        winter=winter,
        light=1.0 if p.sun_x < 0.5 else -1.0,
        n_ground=n_ground,
        n_patch=n_patch,
        n_rock=n_rock,
        n_water=n_water,
        n_sky=n_sky,
    )
    _draw_sun(f, p)
    for cloud in p.clouds:
        _draw_cloud(f, cloud)
    ground_top = p.horizon + p.horizon_wave[0]  # ground is opaque below this
    for ridge, n_line in zip(p.ridges, n_lines, strict=True):
        _draw_ridge(f, ridge, n_line, bottom, ground_top)
    _draw_ground(f, p)
    if p.lake is not None:
        _draw_lake(f, p, p.lake)
    for tree in p.trees:
        _draw_tree(f, tree)
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def render_pair(params: SceneParams, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Render ``(summer, winter)`` of one scene: an exact ground-truth translation pair."""
    return render_scene(params, "summer", size), render_scene(params, "winter", size)


# --------------------------------------------------------------------------------------------
# Dataset on disk
# --------------------------------------------------------------------------------------------


def _read_manifest(root: pathlib.Path) -> dict | None:
    try:
        with open(root / MANIFEST_NAME, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _save_png(arr: np.ndarray, path: pathlib.Path) -> None:
    Image.fromarray(arr).save(path, format="PNG", compress_level=1)


@dataclass(frozen=True)
class SyntheticLandscapes:
    """Generator of the built-in summer->winter dataset.

    Instantiated by Hydra from the dataset config; :meth:`prepare` writes the CycleGAN folder
    layout (``trainA``, ``trainB``, ``testA``, ``testB``) plus a manifest, once.
    """

    n_train: int = 400  # images per domain in the train split
    n_test: int = 50  # scenes in the test split (rendered in both seasons)
    size: int = 64  # pixels, square
    seed: int = 0

    def __post_init__(self) -> None:
        for name, lo in (("size", 16), ("n_train", 1), ("n_test", 1), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise ValueError(f"{name} must be an integer, got {value!r}")
            if value < lo:
                raise ValueError(f"{name} must be >= {lo}, got {value}")

    def manifest(self) -> dict:
        """What ``synthetic.json`` must contain for a folder to count as this dataset."""
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "n_train": int(self.n_train),
            "n_test": int(self.n_test),
            "size": int(self.size),
            "seed": int(self.seed),
        }

    def _mismatch(self, root: pathlib.Path) -> FileExistsError:
        want = self.manifest()
        have = _read_manifest(root)
        if have is not None and have.get("format") == FORMAT_NAME:
            changed = [
                f"{k}={have.get(k)!r} (want {v!r})" for k, v in want.items() if have.get(k) != v
            ]
            diff = ", ".join(changed)
            what = f"holds a synthetic dataset with other settings: {diff}"
        else:
            what = "exists and is not an empty folder or a synthetic dataset"
        return FileExistsError(f"{root} {what}; choose another dataset.root or delete that folder")

    def prepare(self, root: str | os.PathLike) -> pathlib.Path:
        """Render the dataset into ``root`` unless it is already there; return ``root``.

        Rendering goes to a temporary sibling that is renamed into place with the manifest
        written last, so an interrupted or concurrent run never leaves a half-written root.
        """
        root = pathlib.Path(root)
        want = self.manifest()
        if root.exists():
            if _read_manifest(root) == want:
                return root
            if not root.is_dir() or any(root.iterdir()):
                raise self._mismatch(root)
        parent = root.absolute().parent
        parent.mkdir(parents=True, exist_ok=True)
        tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=parent))
        try:
            tmp.chmod(0o755)
            self._render_into(tmp)
            with open(tmp / MANIFEST_NAME, "w", encoding="utf-8") as fh:
                json.dump(want, fh, indent=2)
                fh.write("\n")
            try:
                os.replace(tmp, root)  # also replaces an empty directory
            except OSError:
                if _read_manifest(root) == want:  # another process finished first
                    shutil.rmtree(tmp, ignore_errors=True)
                    return root
                raise self._mismatch(root) from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return root

    def _render_into(self, out: pathlib.Path) -> None:
        for name in ("trainA", "trainB", "testA", "testB"):
            (out / name).mkdir()
        for i in range(self.n_train):
            scene = sample_scene(scene_rng(self.seed, SPLIT_TRAIN_A, i))
            _save_png(render_scene(scene, "summer", self.size), out / "trainA" / f"{i:05d}.png")
        for i in range(self.n_train):
            scene = sample_scene(scene_rng(self.seed, SPLIT_TRAIN_B, i))
            _save_png(render_scene(scene, "winter", self.size), out / "trainB" / f"{i:05d}.png")
        for i in range(self.n_test):
            summer, winter = render_pair(
                sample_scene(scene_rng(self.seed, SPLIT_TEST, i)), self.size
            )
            _save_png(summer, out / "testA" / f"{i:05d}.png")
            _save_png(winter, out / "testB" / f"{i:05d}.png")


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def contact_sheet(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Test-split pairs side by side (rows of summer | winter) for eyeballing the generator."""
    rows = []
    for i in range(n):
        summer, winter = render_pair(sample_scene(scene_rng(seed, SPLIT_TEST, i)), size)
        gap = np.full((size, max(size // 16, 2), 3), 255, np.uint8)
        rows.append(np.concatenate([summer, gap, winter], axis=1))
    return np.concatenate(rows, axis=0)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m cyclegan.data.synthetic``: write the dataset (and optionally a preview)."""
    parser = argparse.ArgumentParser(
        prog="python -m cyclegan.data.synthetic",
        description="Render the synthetic summer->winter landscape dataset.",
    )
    parser.add_argument("--root", default="data/synthetic", help="output folder")
    parser.add_argument("--size", type=int, default=64, help="square image size in pixels")
    parser.add_argument("--n-train", type=int, default=400, help="train images per domain")
    parser.add_argument("--n-test", type=int, default=50, help="paired test scenes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sheet", default=None, help="also write a PNG of 8 test pairs here")
    args = parser.parse_args(argv)
    try:
        ds = SyntheticLandscapes(args.n_train, args.n_test, args.size, args.seed)
        start = time.perf_counter()
        root = ds.prepare(args.root)
        took = time.perf_counter() - start
        if args.sheet:
            _save_png(contact_sheet(8, args.size, args.seed), pathlib.Path(args.sheet))
    except (ValueError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"dataset ready at {root} ({took:.2f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
