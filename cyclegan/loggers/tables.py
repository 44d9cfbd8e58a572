"""What text-and-image loggers (TensorBoard) make of tables and configs: a Markdown table of the
numeric columns, one image grid of the image columns, flat hyper-parameters, YAML text."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def _is_image(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.ndim == 3


def numeric_columns(columns: list[str], rows: list[list[Any]]) -> tuple[list[str], list[list[Any]]]:
    """The columns whose cells are not images, and the rows cut to them."""
    keep = [i for i, _ in enumerate(columns) if not any(_is_image(row[i]) for row in rows)]
    return [columns[i] for i in keep], [[row[i] for i in keep] for row in rows]


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4g}"
    return str(value).replace("|", "\\|")


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def image_grid(columns: list[str], rows: list[list[Any]], pad: int = 2) -> tuple[Any, list[str]]:
    """The image cells as one (H, W, 3) uint8 grid: a row per table row, a column per image
    column, on white with `pad` pixels between tiles; None when there are no images. Tiles of
    different sizes are placed top-left in a cell of the largest size."""
    index = [i for i, _ in enumerate(columns) if any(_is_image(row[i]) for row in rows)]
    if not index or not rows:
        return None, []
    tiles = [[row[i] for i in index] for row in rows]
    h = max(t.shape[0] for r in tiles for t in r if _is_image(t))
    w = max(t.shape[1] for r in tiles for t in r if _is_image(t))
    grid = np.full((len(rows) * (h + pad) + pad, len(index) * (w + pad) + pad, 3), 255, np.uint8)
    for r, row in enumerate(tiles):
        for c, tile in enumerate(row):
            if _is_image(tile):
                y, x = pad + r * (h + pad), pad + c * (w + pad)
                grid[y : y + tile.shape[0], x : x + tile.shape[1]] = tile[..., :3]
    return grid, [columns[i] for i in index]


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"model": {"ngf": 8}} -> {"model.ngf": 8}."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def flat_hparams(config: dict[str, Any]) -> dict[str, bool | int | float | str]:
    """The config as TensorBoard hyper-parameters: dotted keys, values a bool, number or string
    (lists and None as their text)."""
    out: dict[str, bool | int | float | str] = {}
    for key, value in flatten(config).items():
        out[key] = value if isinstance(value, bool | int | float | str) else str(value)
    return out


def yaml_text(data: dict[str, Any]) -> str:
    """YAML as a Markdown code block (indented four spaces), as TensorBoard's Text tab shows it."""
    import yaml

    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    return "    " + text.rstrip("\n").replace("\n", "\n    ")
