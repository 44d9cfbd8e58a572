"""Translate images with a trained generator: a file, a folder (recursively) or a glob.

    python -m cyclegan.translate ckpt=outputs/.../checkpoints/last.pt input=photos/ output=out/ direction=AtoB
    cyclegan-translate ckpt=latest_net_G.pth input='photos/**/*.jpg' output=out/   # official pretrained

The output folder mirrors the input tree (same relative paths and file names). Weights may be our
training checkpoint (holding both directions; `direction=` picks one), our export, PyTorch-GAN's
`G_AB_<epoch>.pth` or an official `latest_net_G_A.pth`; see `cyclegan.inference.importers`. An
exported `G_AB.onnx` runs in onnxruntime and a `G_AB.torchscript` in torch.jit, as the graph the
file holds (`cyclegan.inference.graph_runtime`), with the same padding, batching and tiling.

Images keep their size and come out with the generator's output channels (a grayscale model
writes grayscale files; colour inputs to a grayscale model are reduced to luma first): each is
reflection-padded to a multiple of 4 (the generator halves the size twice), translated and cropped
back; `tile=N` translates images larger than N pixels in overlapping N x N tiles blended with
linear ramps, which bounds memory (`cyclegan.inference.tiling`; colours can shift slightly between tiles,
since instance norm normalises per tile: keep tiles large, 512+, for real photos). Images
of the same size are batched (instance norm is per sample, so batching changes no result).
Inputs are never overwritten: an output folder that is (or contains) the input folder, or any
output path that is an input file, is refused before anything is written. Unreadable images are
reported and skipped; the exit status is then 1 (2 for bad arguments), 0 when all were translated.
"""

from __future__ import annotations

import argparse
import glob
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from cyclegan.checkpoints.file import CheckpointError
from cyclegan.data.folder import UnreadableImageError, is_image_file, load_image
from cyclegan.files import atomic_write
from cyclegan.inference.cli import run_command
from cyclegan.inference.graph_runtime import GRAPH_SUFFIXES, graph_format, load_graph
from cyclegan.inference.importers import Format, Weights, load_generator, require_weights
from cyclegan.inference.tiling import run_padded, run_tiled
from cyclegan.runtime.device import resolve_device

# Named, not __name__: under `python -m cyclegan.translate` that is "__main__", outside our handler.
log = logging.getLogger("cyclegan.translate")

EXIT_PARTIAL = 1  # some inputs were unreadable and skipped; the rest were written
_GLOB_CHARS = set("*?[")
JPEG_QUALITY = 95
_GRAPH_NAMES = {"onnx": "an ONNX", "torchscript": "a TorchScript"}


class OutputCollisionError(ValueError):
    """Writing the outputs would overwrite an input (or two inputs would share an output)."""


# ---------------------------------------------------------------------------------- planning


def collect_inputs(spec: str | Path, exclude: Path | None = None) -> tuple[Path, list[Path]]:
    """(root, image files) for a file, a folder (recursive) or a glob; paths under `exclude` skipped.

    `root` is what output paths are made relative to: the folder itself, the file's folder, or the
    part of a glob before its first wildcard.
    """
    text = str(spec)
    path = Path(text)
    if path.is_file():
        return path.parent, [path]
    if path.is_dir():
        root, files = path, _walk_images(path)
    elif _GLOB_CHARS & set(text):
        parts = Path(text).parts
        first_wild = next(i for i, part in enumerate(parts) if _GLOB_CHARS & set(part))
        root = Path(*parts[:first_wild]) if first_wild else Path(".")
        files = sorted(
            Path(p)
            for p in glob.glob(text, recursive=True)
            if Path(p).is_file() and is_image_file(p)
        )
    else:
        raise FileNotFoundError(f"input '{text}' is not a file, a folder or a glob; check the path")
    skip = exclude.resolve() if exclude is not None else None
    if skip is not None and skip != root.resolve() and skip.is_relative_to(root.resolve()):
        # An output folder inside the input folder: never read earlier outputs back as inputs.
        files = [f for f in files if not f.resolve().is_relative_to(skip)]
    if not files:
        raise FileNotFoundError(f"no images found in input '{text}'")
    return root, files


def _walk_images(folder: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath) / n for n in filenames if is_image_file(n)]
    return sorted(found, key=lambda p: p.relative_to(folder).parts)


def plan_outputs(
    root: Path, files: Sequence[Path], output: Path, ext: str = "keep"
) -> list[tuple[Path, Path]]:
    """(input, output) pairs mirroring the tree; refuses any plan that would overwrite an input."""
    if output.exists() and not output.is_dir():
        raise OutputCollisionError(
            f"output='{output}' is an existing file; output= names a folder (it mirrors the input "
            "tree): choose a new or existing folder"
        )
    if root.resolve().is_relative_to(output.resolve()):  # the same folder, or a parent of it
        raise OutputCollisionError(
            f"output folder '{output}' is or contains the input folder '{root}'; choose a "
            "separate output= (inputs are never overwritten)"
        )
    sources = {f.resolve() for f in files}
    pairs, seen = [], {}
    for src in files:
        rel = src.relative_to(root)
        dst = output / (rel if ext == "keep" else rel.with_suffix("." + ext.lstrip(".")))
        if dst.suffix.lower() not in Image.registered_extensions():
            raise ValueError(f"cannot write '{dst.suffix}' images; pass ext=png or ext=jpg")
        key = dst.resolve()
        if key in sources:
            raise OutputCollisionError(
                f"output '{dst}' would overwrite input '{src}'; choose another output="
            )
        if key in seen:
            raise OutputCollisionError(
                f"inputs '{seen[key]}' and '{src}' would both be written to '{dst}'; "
                "use ext=keep or rename one"
            )
        seen[key] = src
        pairs.append((src, dst))
    return pairs


# ---------------------------------------------------------------------------------- tensors


def to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL image -> (C, H, W) float in [-1, 1], the range the generators were trained on."""
    array = np.asarray(image, dtype=np.float32)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array).permute(2, 0, 1) / 127.5 - 1.0


def to_image(x: torch.Tensor) -> Image.Image:
    """(C, H, W) in [-1, 1] -> 8-bit PIL image (rounded, not truncated)."""
    array = ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    array = array.permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)


# ---------------------------------------------------------------------------------- running


@dataclass
class Report:
    translated: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def save_image(image: Image.Image, path: Path) -> None:
    """Write atomically (temp file + rename), so an interrupted run leaves no half image."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = Image.registered_extensions()[path.suffix.lower()]
    options = {"quality": JPEG_QUALITY} if fmt == "JPEG" else {}
    atomic_write(path, lambda tmp: image.save(tmp, format=fmt, **options))


class Translator:
    """Batches same-size images through the generator; tiles large ones when `tile` > 0."""

    def __init__(
        self,
        generator: torch.nn.Module,
        device: torch.device,
        batch_size: int = 4,
        tile: int = 0,
        overlap: int = 32,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}: must be >= 1")
        if tile and not (tile >= 16 and 0 <= overlap <= tile // 2):
            raise ValueError(
                f"tile={tile}, tile_overlap={overlap}: use tile >= 16 and 0 <= overlap <= tile/2"
            )
        self.generator = generator.to(device).eval()
        self.device = device
        self.batch_size = batch_size
        self.tile = tile
        self.overlap = overlap
        # Inputs are decoded to what the generator reads (a colour photo becomes luma for a
        # grayscale model); a one-channel output is written as a grayscale image by to_image.
        self.in_channels = int(getattr(generator, "in_channels", getattr(generator, "channels", 3)))

    @torch.inference_mode()
    def translate(self, batch: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [-1, 1] -> translated, same shape, on the CPU."""
        x = batch.to(self.device)
        h, w = x.shape[-2:]
        if self.tile and max(h, w) > self.tile:
            y = torch.cat(
                [
                    run_tiled(self.generator, xi[None], self.tile, self.overlap, self.batch_size)
                    for xi in x
                ]
            )
        else:
            y = run_padded(self.generator, x)
        return y.float().cpu()

    def _load(self, path: Path) -> torch.Tensor:
        return to_tensor(load_image(path, self.in_channels))

    def run(self, pairs: Sequence[tuple[Path, Path]], progress: bool = True) -> Report:
        """Translate every (input, output) pair; unreadable inputs are reported and skipped."""
        from tqdm.auto import tqdm  # only the command line needs it

        report = Report()
        bar = tqdm(total=len(pairs), unit="img", disable=not progress, dynamic_ncols=True)
        for group in self._batches(pairs, report, bar):
            outputs = self.translate(torch.stack([x for _, _, x in group]))
            for (_, dst, _), y in zip(group, outputs, strict=True):
                save_image(to_image(y), dst)
                report.translated.append(dst)
                bar.update(1)
        bar.close()
        return report

    def _batches(
        self, pairs: Sequence[tuple[Path, Path]], report: Report, bar: Any
    ) -> Iterator[list[tuple[Path, Path, torch.Tensor]]]:
        # Pending images per size; a batch leaves as soon as it is full, the rest at the end.
        pending: dict[tuple[int, ...], list[tuple[Path, Path, torch.Tensor]]] = {}
        for src, dst in pairs:
            try:
                x = self._load(src)
            except (UnreadableImageError, OSError) as exc:
                log.warning("skipped %s: %s", src, exc)
                report.skipped.append((src, str(exc)))
                bar.update(1)
                continue
            if self.tile and max(x.shape[-2:]) > self.tile:
                yield [(src, dst, x)]  # tiled alone: big images are why tiling exists
                continue
            group = pending.setdefault(tuple(x.shape), [])
            group.append((src, dst, x))
            if len(group) >= self.batch_size:
                yield pending.pop(tuple(x.shape))
        yield from pending.values()


def translate(
    ckpt: str | Path,
    inputs: str | Path,
    output: str | Path,
    direction: str | None = None,
    *,
    fmt: str = "auto",
    device: str = "auto",
    batch_size: int = 4,
    tile: int = 0,
    tile_overlap: int = 32,
    ext: str = "keep",
    progress: bool = True,
    weights: str = "auto",
    **overrides: object,
) -> Report:
    """Translate `inputs` into `output` (mirrored tree) with the generator in `ckpt` (`weights`:
    a training checkpoint's averaged generator, ema, or its trained one, raw; auto: the average
    when the file keeps one)."""

    output = Path(output)
    root, files = collect_inputs(inputs, exclude=output)
    pairs = plan_outputs(root, files, output, ext)
    generator, what, run_on = _load_generator(ckpt, direction, fmt, device, weights, overrides)
    log.info("%s: %d images -> %s", what, len(pairs), output)
    translator = Translator(generator, run_on, batch_size, tile, tile_overlap)
    return translator.run(pairs, progress)


def _load_generator(
    ckpt: str | Path,
    direction: str | None,
    fmt: str,
    device: str,
    weights: str,
    overrides: dict[str, object],
) -> tuple[torch.nn.Module, str, torch.device]:
    """The generator in `ckpt` (rebuilt from weights, or an exported ONNX/TorchScript graph),
    a description for the log, and the device its inputs go to."""
    kind = graph_format(ckpt, fmt)
    if kind is not None:
        given = sorted(k for k, v in overrides.items() if v is not None)
        if given:
            raise ValueError(
                f"{'=, '.join(given)}= describe weights to rebuild a network from; '{ckpt}' is "
                f"{_GRAPH_NAMES[kind]} file holding its network: drop them"
            )
        graph = load_graph(ckpt, kind, direction, device)
        source = graph.info.get("source") or {}
        require_weights(weights, Weights(source.get("weights", "raw")), Path(ckpt))
        what = f"{graph.direction} " if graph.direction else ""
        text = f"{kind} generator ({what}{graph.spec.describe()}) from {ckpt}, run by {graph.where}"
        # onnxruntime takes host arrays and places them itself; TorchScript runs on `device`.
        run_on = torch.device("cpu") if kind == "onnx" else resolve_device(device)
        return graph.generator, text, run_on
    loaded = load_generator(ckpt, direction, fmt, weights, **overrides)
    what = f"{loaded.direction} " if loaded.direction else ""
    averaged = ", averaged weights (ema)" if loaded.weights is Weights.ema else ""
    text = (
        f"{loaded.format} generator ({what}{loaded.spec.describe()}, {loaded.spec.channels} -> "
        f"{loaded.spec.out_channels} channels{averaged}) from {loaded.source}"
    )
    if loaded.dropped_keys:
        log.info("ignored %d legacy InstanceNorm running-stat entries", len(loaded.dropped_keys))
    if direction and loaded.format not in (Format.checkpoint, Format.exported):
        log.info("direction=%s: this file holds one generator, which is used as it is", direction)
    return loaded.generator, text, resolve_device(device)


def _build_parser() -> argparse.ArgumentParser:
    from cyclegan.inference.cli import boolean

    p = argparse.ArgumentParser(
        prog="python -m cyclegan.translate",
        description="Translate images with a trained CycleGAN generator. "
        "Arguments as key=value (ckpt=... input=... output=...) or --key value.",
    )
    p.add_argument(
        "--ckpt",
        required=True,
        help="checkpoint, export (.safetensors, .onnx, .torchscript) or .pth file",
    )
    p.add_argument("--input", required=True, help="an image, a folder (recursive) or a glob")
    p.add_argument("--output", required=True, help="output folder (mirrors the input tree)")
    p.add_argument("--direction", choices=["AtoB", "BtoA"], default=None, help="default AtoB")
    p.add_argument(
        "--weights",
        choices=[w.value for w in Weights],
        default="auto",
        help="a training checkpoint's averaged generator (ema; auto: when it has one) or raw",
    )
    p.add_argument(
        "--format",
        "--input-format",
        dest="fmt",
        default="auto",
        choices=["auto", *(f.value for f in Format), *GRAPH_SUFFIXES.values()],
        help="the ckpt file's format, when detection (keys, .onnx/.torchscript) is not enough",
    )
    p.add_argument(
        "--variant", choices=["resnet", "paper", "cut"], help="override the detected variant"
    )
    p.add_argument("--ngf", type=int, help="override the detected width")
    p.add_argument("--n-residual-blocks", type=int, help="override the detected block count")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--tile", type=int, default=0, help="tile images larger than this (0: never)")
    p.add_argument("--tile-overlap", type=int, default=32)
    p.add_argument("--ext", default="keep", help="output extension: keep (default), png, jpg, ...")
    p.add_argument("--progress", type=boolean, default=True, nargs="?", const=True)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: 0 all translated, 1 some inputs skipped, 2 bad arguments."""
    return run_command(_build_parser(), _run, argv, USER_ERRORS)


USER_ERRORS = (CheckpointError, FileNotFoundError, ValueError, RuntimeError)


def _run(args: argparse.Namespace) -> int:
    report = translate(
        args.ckpt,
        args.input,
        args.output,
        args.direction,
        fmt=args.fmt,
        device=args.device,
        batch_size=args.batch_size,
        tile=args.tile,
        tile_overlap=args.tile_overlap,
        ext=args.ext,
        progress=args.progress,
        weights=args.weights,
        variant=args.variant,
        ngf=args.ngf,
        n_residual_blocks=args.n_residual_blocks,
    )
    log.info("translated %d images into %s", len(report.translated), args.output)
    if report.skipped:
        log.warning("skipped %d unreadable inputs:", len(report.skipped))
        for path, _ in report.skipped:
            log.warning("  %s", path)
        return EXIT_PARTIAL
    return 0
