"""Export trained generators for inference without the training code: safetensors, ONNX, TorchScript.

    python -m cyclegan.export ckpt=outputs/.../checkpoints/last.pt output=exported/
    python -m cyclegan.export ckpt=outputs/.../checkpoints/last.pt output=exported/ format=onnx

writes `exported/G_AB.safetensors` + `exported/G_AB.json` and the same for G_BA. The JSON holds the
architecture (enough to rebuild the `Generator`), the direction and where the weights came from;
the same JSON is embedded in the safetensors header, so the weights file alone is enough too.
safetensors holds only tensors: loading it never runs code, and it needs neither the optimizer
state nor the discriminators of the 100+ MB training checkpoint.

`format=onnx` writes `G_AB.onnx` (onnxruntime and other runtimes, no PyTorch needed) and
`format=torchscript` writes `G_AB.torchscript` (`torch.jit.load`, no project code needed): the
network itself, the same JSON in the file's metadata, each checked against the PyTorch generator
before it is kept (`cyclegan.inference.graph_export`). `format=` names what to write; the input's
format, detected from its keys, is forced with `input_format=`.

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
from cyclegan.inference.graph_export import OPSET, SUFFIXES, ExportError, save_graph
from cyclegan.inference.graph_runtime import graph_format
from cyclegan.inference.importers import (
    EXPORT_FORMAT,
    Direction,
    Format,
    LoadedGenerator,
    Weights,
    load_into_generator,
    read_weights,
)

# Named, not __name__: under `python -m cyclegan.export` that is "__main__", outside our handler.
log = logging.getLogger("cyclegan.export")

EXPORT_VERSION = 1
OUTPUT_FORMATS = ("safetensors", "onnx", "torchscript")


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
    source["weights"] = str(loaded.weights)  # ema: the generator's average (weights= on reading)
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
    output_format: str = "safetensors",
    weights: str = "auto",
) -> list[Path]:
    """Export the generators of `ckpt` into folder `output` as `output_format` (safetensors, onnx
    or torchscript); returns the written weights files. `weights`: a training checkpoint's
    averaged generators (ema; auto: when it keeps them) or its trained ones (raw); the JSON's
    source.weights says which."""
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(f"format={output_format}: choose one of {', '.join(OUTPUT_FORMATS)}")
    if graph_format(ckpt, fmt):
        raise ExportError(
            f"'{ckpt}' is already an ONNX/TorchScript export, which holds no weights to convert; "
            "export from the checkpoint or its .safetensors export"
        )
    file = read_weights(ckpt, fmt, weights)
    output = Path(output)
    if file.format is not Format.checkpoint:
        directions = [str(file.directions[0])] if file.directions else [""]
    elif file.one_sided and len(directions) > 1:  # "both" of a CUT model: its one generator
        directions = [str(d) for d in file.directions]
    written = []
    for direction in directions:
        loaded = load_into_generator(file, direction or None)
        name = loaded.direction.container_key if loaded.direction else "generator"
        path, note = _write(loaded, output / name, output_format)
        log.info(
            "%s: %s generator (%s weights), %d -> %d channels -> %s%s",
            name,
            loaded.spec.describe(),
            loaded.weights,
            loaded.spec.channels,
            loaded.spec.out_channels or loaded.spec.channels,
            path,
            note,
        )
        written.append(path)
    return written


def _write(loaded: LoadedGenerator, stem: Path, output_format: str) -> tuple[Path, str]:
    """Write one generator; returns its path and what the log line adds (the parity measured)."""
    if output_format == "safetensors":
        path, _ = save_generator(loaded, stem.with_suffix(".safetensors"))
        return path, ""
    path = stem.with_suffix(SUFFIXES[output_format])
    path, parity = save_graph(loaded, path, output_format, export_info(loaded, path.name))
    checked = ", ".join(f"{'x'.join(map(str, shape))}: {diff:.1e}" for shape, diff in parity)
    opset = f" (opset {OPSET})" if output_format == "onnx" else ""
    return path, f"{opset}; max |difference| to PyTorch {checked}"


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cyclegan.export",
        description="Write trained generators as safetensors + JSON, ONNX or TorchScript "
        "(key=value or --key value).",
    )
    parser.add_argument("--ckpt", required=True, help="checkpoints/last.pt or any generator file")
    parser.add_argument("--output", required=True, help="folder for G_AB/G_BA files")
    parser.add_argument(
        "--direction",
        choices=["AtoB", "BtoA", "both"],
        default="both",
        help="which generator(s) of a training checkpoint to export (default both)",
    )
    parser.add_argument(
        "--weights",
        choices=[w.value for w in Weights],
        default="auto",
        help="a training checkpoint's averaged generators (ema; auto: when it has them) or raw",
    )
    parser.add_argument(
        "--format",
        dest="output_format",
        default="safetensors",
        choices=[*OUTPUT_FORMATS, *_INPUT_FORMATS],
        help="what to write: safetensors (default, + .json), onnx or torchscript",
    )
    parser.add_argument(
        "--input-format",
        dest="fmt",
        default="auto",
        choices=_INPUT_FORMATS,
        help="the ckpt file's format, when detection from its keys is not enough",
    )
    return parser


_INPUT_FORMATS = ["auto", *(f.value for f in Format)]


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (2: bad input)."""
    return run_command(
        _build_parser(), _run, argv, (CheckpointError, FileNotFoundError, ValueError)
    )


def _run(args: argparse.Namespace) -> int:
    if args.output_format in _INPUT_FORMATS:  # format= named the input before ONNX existed
        if args.fmt != "auto":
            raise ValueError(
                f"format={args.output_format} names an input format and input_format= is given "
                "too; format= names what to write: safetensors, onnx or torchscript"
            )
        log.warning(
            "format=%s names the input's format: write input_format=%s (format= now names "
            "what to write: safetensors, onnx or torchscript)",
            args.output_format,
            args.output_format,
        )
        args.fmt, args.output_format = args.output_format, "safetensors"
    directions = [d.value for d in Direction] if args.direction == "both" else [args.direction]
    paths = export(args.ckpt, args.output, directions, args.fmt, args.output_format, args.weights)
    for path in paths:
        print(path)
    return 0
