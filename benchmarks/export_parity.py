"""ONNX and TorchScript exports of trained models against the PyTorch generator they came from.

    python benchmarks/export_parity.py outputs/<cyclegan run> outputs/<cut run>
    python benchmarks/export_parity.py outputs/<run> --sizes 64,256 --images data/synthetic-64px-seed0

For each run's `checkpoints/last.pt` and each direction it holds (a CUT model: A->B only), it
exports ONNX and TorchScript with `python -m cyclegan.export`'s code (timed), then translates the
test images (testA for A->B, testB for B->A) at each size (all at the first, the training size;
`--limit` of them, resized bilinearly, at the others) with PyTorch, with onnxruntime and with the
TorchScript module, in batches of 8. The table gives each format's max and mean |difference| to
PyTorch on the [-1, 1] outputs, how many 8-bit output pixels differ and by how much at most, and
the time per image as a ratio to PyTorch measured in the same run (onnxruntime uses its own
thread pool, one thread per core; torch the threads it reports). Last, `translate` itself runs the folder at its own size through
the checkpoint, the .onnx and the .torchscript file, and the written images are compared.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cyclegan.data.folder import is_image_file, load_image  # noqa: E402
from cyclegan.inference import translate  # noqa: E402
from cyclegan.inference.export import export  # noqa: E402
from cyclegan.inference.graph_export import OPSET  # noqa: E402
from cyclegan.inference.graph_runtime import load_graph  # noqa: E402
from cyclegan.inference.importers import load_generator, read_weights  # noqa: E402

FORMATS = ("onnx", "torchscript")
FOLDERS = {"AtoB": "testA", "BtoA": "testB"}


def images_of(folder: Path, channels: int, size: int, limit: int) -> torch.Tensor:
    """The first `limit` images of `folder` (0: all) as (N, C, size, size) in [-1, 1], resized
    bilinearly when they have another size."""
    files = sorted(p for p in folder.iterdir() if is_image_file(p))[: limit or None]
    x = torch.stack([translate.to_tensor(load_image(p, channels)) for p in files])
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x


def run_batches(generator: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Outputs in batches of 8, and the seconds per image."""
    outputs, start = [], time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(x), 8):
            outputs.append(generator(x[i : i + 8]).float())
    return torch.cat(outputs), (time.perf_counter() - start) / len(x)


def eight_bit(y: torch.Tensor) -> torch.Tensor:
    return ((y.clamp(-1, 1) + 1) * 127.5).round()


def compare_sizes(
    ckpt: Path, direction: str, files: dict[str, Path], folder: Path, sizes: list[int], limit: int
) -> list[list[str]]:
    """One row per (size, format): differences to PyTorch and time per image; all images at the
    first size, `limit` at the others."""
    reference = load_generator(ckpt, direction).generator
    graphs = {kind: load_graph(files[kind], kind).generator for kind in FORMATS}
    rows = []
    for i, size in enumerate(sizes):
        x = images_of(folder, graphs["onnx"].in_channels, size, limit if i else 0)
        run_batches(reference, x[:2])  # warm-up
        want, t_ref = run_batches(reference, x)
        rows.append(
            [f"{size}x{size}", "pytorch", str(len(x)), "-", "-", "-", f"{t_ref * 1e3:.1f}", "1.00x"]
        )
        for kind, graph in graphs.items():
            run_batches(graph, x[:2])
            got, t = run_batches(graph, x)
            diff = (got - want).abs()
            levels = (eight_bit(got) - eight_bit(want)).abs()
            changed = f"{int((levels > 0).sum())} ({int(levels.max())})"
            rows.append(
                [f"{size}x{size}", kind, str(len(x)), f"{float(diff.max()):.2e}",
                 f"{float(diff.mean()):.1e}", changed, f"{t * 1e3:.1f}", f"{t / t_ref:.2f}x"]
            )  # fmt: skip
    return rows


def compare_translate(
    ckpt: Path, direction: str, files: dict[str, Path], folder: Path, out: Path
) -> str:
    """`translate` on the folder through the checkpoint and each file: differing written images."""
    runs = {"ckpt": (ckpt, direction)} | {kind: (files[kind], None) for kind in FORMATS}
    written = {}
    for name, (weights, d) in runs.items():
        target = out / f"translate-{direction}-{name}"
        translate.translate(weights, folder, target, d, device="cpu", progress=False)
        written[name] = {p.name: np.asarray(Image.open(p), dtype=int) for p in target.iterdir()}
    parts = []
    for kind in FORMATS:
        pairs = [(written["ckpt"][n], written[kind][n]) for n in written["ckpt"]]
        differing = sum(int(not np.array_equal(a, b)) for a, b in pairs)
        worst = max(int(np.abs(a - b).max()) for a, b in pairs)
        parts.append(f"{kind}: {differing}/{len(pairs)} images differ, max {worst} levels")
    return "; ".join(parts)


def measure_run(run: Path, images: Path, sizes: list[int], limit: int, out: Path) -> None:
    ckpt = run / "checkpoints" / "last.pt"
    directions = [str(d) for d in read_weights(ckpt).directions]
    for direction in directions:
        files, seconds = {}, {}
        for kind in FORMATS:
            start = time.perf_counter()
            (files[kind],) = export(ckpt, out / run.name, [direction], output_format=kind)
            seconds[kind] = time.perf_counter() - start
        spec = load_generator(ckpt, direction).spec
        print(f"\n{run} {direction}: {spec.describe()}, {spec.channels} -> {spec.out_channels} ch")
        print(
            "export (incl. its own parity check): "
            + ", ".join(f"{k} {s:.1f} s" for k, s in seconds.items())
        )
        header = [
            "size",
            "format",
            "images",
            "max|diff|",
            "mean|diff|",
            "8-bit px differ (max)",
            "ms/img",
            "vs PyTorch",
        ]
        rows = [
            header,
            *compare_sizes(ckpt, direction, files, images / FOLDERS[direction], sizes, limit),
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        for i, row in enumerate(rows):
            print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
            if i == 0:
                print("-" * (sum(widths) + 2 * len(widths) - 2))
        print(
            "translate, test images at their size: "
            + compare_translate(ckpt, direction, files, images / FOLDERS[direction], out)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "runs", nargs="+", type=Path, help="run directories (with checkpoints/last.pt)"
    )
    parser.add_argument("--images", type=Path, default=ROOT / "data" / "synthetic-64px-seed0",
                        help="dataset folder holding testA/ and testB/")  # fmt: skip
    parser.add_argument(
        "--sizes",
        default="64,256",
        help="square sizes, multiples of 4; all test images at the first",
    )
    parser.add_argument("--limit", type=int, default=10, help="images at the other sizes (0: all)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime "
          f"{__import__('onnxruntime').__version__} (its default threads: one per core, "
          f"{os.cpu_count()} here), ONNX opset {OPSET}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for run in args.runs:
            measure_run(run, args.images, sizes, args.limit, Path(tmp))


if __name__ == "__main__":
    main()
