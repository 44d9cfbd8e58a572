"""Export trained generators as safetensors + a small JSON, for inference without the training code.

    python -m cyclegan.export ckpt=outputs/.../checkpoints/last.pt output=exported/

writes `exported/G_AB.safetensors` + `exported/G_AB.json` and the same for G_BA. The JSON holds the
architecture (enough to rebuild the `Generator`), the direction and where the weights came from;
the same JSON is embedded in the safetensors header, so the weights file alone is enough too.
safetensors holds only tensors: loading it never runs code, and it needs neither the optimizer
state nor the discriminators of the 100+ MB training checkpoint.

Any file `cyclegan.translate` reads can be exported, so this also converts PyTorch-GAN and official
generators into the same format.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cyclegan.checkpoints.file import CheckpointError
from cyclegan.files import atomic_write
from cyclegan.inference.cli import run_command
from cyclegan.inference.importers import (
    EXPORT_FORMAT,
    Direction,
    Format,
    LoadedGenerator,
    load_into_generator,
    read_weights,
)

# Named, not __name__: under `python -m cyclegan.export` that is "__main__", outside our handler.
log = logging.getLogger("cyclegan.export")

EXPORT_VERSION = 1


_CHANNEL_NAMES = {1: "grayscale", 3: "RGB"}


def io_description(in_channels: int, out_channels: int, size_multiple: int = 4) -> str:
    """What goes in and comes out, for someone writing their own inference code."""
    names = [_CHANNEL_NAMES.get(c, f"{c}-channel") for c in (in_channels, out_channels)]
    what = f"{names[0]} in and out" if names[0] == names[1] else f"{names[0]} in, {names[1]} out"
    return f"{what}, values in [-1, 1] (pixel / 127.5 - 1); any size divisible by {size_multiple}"


def export_info(loaded: LoadedGenerator, weights_name: str) -> dict[str, Any]:
    """The JSON that describes one exported generator."""
    config = loaded.meta.get("config") or {}
    dataset = config.get("dataset") or {}
    source: dict[str, Any] = {"file": str(loaded.source), "format": str(loaded.format)}
    for key in ("epoch", "step"):
        if key in loaded.meta:
            source[key] = loaded.meta[key]
    if dataset:
        source["dataset"] = dataset.get("name")
        for key in ("img_size", "preprocess", "load_size", "crop_size"):
            if dataset.get(key) is not None:
                source[key] = dataset[key]
    if loaded.format is Format.exported:  # re-export: keep the original provenance
        source = loaded.meta.get("source", source)
    return {
        "format": EXPORT_FORMAT,
        "format_version": EXPORT_VERSION,
        "weights": weights_name,
        "direction": str(loaded.direction) if loaded.direction else None,
        "architecture": loaded.spec.to_dict(),
        "io": io_description(
            loaded.spec.channels,
            loaded.spec.out_channels or loaded.spec.channels,
            loaded.spec.size_multiple,
        ),
        "source": source,
    }


def save_generator(loaded: LoadedGenerator, path: str | Path) -> tuple[Path, Path]:
    """Write `path` (.safetensors) and the JSON beside it; returns both paths."""
    from safetensors.torch import save_file  # only exporting needs it

    path = Path(path).with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    info = export_info(loaded, path.name)
    text = json.dumps(info, indent=2) + "\n"
    tensors = {k: v.detach().cpu().contiguous() for k, v in loaded.generator.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={EXPORT_FORMAT: text}))
    sidecar = path.with_suffix(".json")
    atomic_write(sidecar, lambda tmp: tmp.write_text(text))
    return path, sidecar


def export(
    ckpt: str | Path,
    output: str | Path,
    directions: Sequence[str] = ("AtoB", "BtoA"),
    fmt: str = "auto",
) -> list[Path]:
    """Export the generators of `ckpt` into folder `output`; returns the .safetensors paths."""
    weights = read_weights(ckpt, fmt)
    output = Path(output)
    if weights.format is not Format.checkpoint:
        directions = [str(weights.directions[0])] if weights.directions else [""]
    elif weights.one_sided and len(directions) > 1:  # "both" of a CUT model: its one generator
        directions = [str(d) for d in weights.directions]
    written = []
    for direction in directions:
        loaded = load_into_generator(weights, direction or None)
        name = loaded.direction.container_key if loaded.direction else "generator"
        path, _ = save_generator(loaded, output / f"{name}.safetensors")
        log.info(
            "%s: %s generator, %d -> %d channels -> %s",
            name,
            loaded.spec.describe(),
            loaded.spec.channels,
            loaded.spec.out_channels or loaded.spec.channels,
            path,
        )
        written.append(path)
    return written


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cyclegan.export",
        description="Write trained generators as safetensors + JSON (key=value or --key value).",
    )
    parser.add_argument("--ckpt", required=True, help="checkpoints/last.pt or any generator file")
    parser.add_argument("--output", required=True, help="folder for G_AB/G_BA .safetensors + .json")
    parser.add_argument(
        "--direction",
        choices=["AtoB", "BtoA", "both"],
        default="both",
        help="which generator(s) of a training checkpoint to export (default both)",
    )
    parser.add_argument(
        "--format", default="auto", choices=["auto", *(f.value for f in Format)], dest="fmt"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (2: bad input)."""
    return run_command(
        _build_parser(), _run, argv, (CheckpointError, FileNotFoundError, ValueError)
    )


def _run(args: argparse.Namespace) -> int:
    directions = [d.value for d in Direction] if args.direction == "both" else [args.direction]
    paths = export(args.ckpt, args.output, directions, args.fmt)
    for path in paths:
        print(path)
    return 0
