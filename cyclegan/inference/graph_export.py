"""Write a generator as an ONNX model or a TorchScript archive, checked against PyTorch before it is kept.

ONNX (onnxruntime, TensorRT, OpenVINO, browsers): torch.onnx's exporter built on `torch.export`
(the one PyTorch develops; its older TorchScript-based exporter is deprecated), opset `OPSET`,
one input `input` and one output `output`, float32 (B, C, H, W) with values in [-1, 1]. Batch,
height and width are dynamic; height and width as multiples of the generator's size rule (4 for
the ResNets, 2^num_downs for a U-Net), which the axis names show (`4*h`, `256*w`).

TorchScript (libtorch in C++, `torch.jit.load` in Python): traced, not scripted. The networks have
no data-dependent branches (the only Python conditions seen while tracing are instance norm's
size checks), so the traced ops are the network at any size, and `torch.jit.script` cannot compile
every generator (the U-Net's properties). PyTorch deprecates torch.jit in favour of torch.export,
but saved archives still load.

Each file carries the export JSON (architecture, direction, value range, size rule; see
`cyclegan.inference.graph_runtime`). Before a file is renamed into place it is loaded back
(onnxruntime, or torch.jit.load) and run on random inputs of two sizes: its outputs must equal the
PyTorch generator's to `TOLERANCE`, or nothing is written.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cyclegan.files import atomic_write
from cyclegan.inference.graph_runtime import INSTALL_HINT, TORCHSCRIPT_EXTRA, load_graph
from cyclegan.inference.importers import EXPORT_FORMAT, LoadedGenerator
from cyclegan.parts.networks.spec import GeneratorSpec

OPSET = 18  # onnxruntime >= 1.14, TensorRT >= 8.6, OpenVINO >= 2023.0 read it
TOLERANCE = {"onnx": 1e-4, "torchscript": 1e-5}  # max |difference| to the PyTorch generator
NORMALIZATION = (
    "float32 (B, C, H, W) in [-1, 1]: input = pixel / 127.5 - 1, pixel = (output + 1) * 127.5"
)
INPUT_NAME, OUTPUT_NAME = "input", "output"


class ExportError(ValueError):
    """A generator that cannot be written in the asked format (one line, naming what to do)."""


Parity = list[tuple[tuple[int, ...], float]]  # (input shape, max |difference|) per checked input


def parity_sizes(spec: GeneratorSpec) -> list[tuple[int, int, int]]:
    """Two (batch, height, width) that the size rule allows, of different shapes and batch sizes."""
    m = spec.size_multiple
    if m == 4:
        return [(1, 60, 84), (2, 96, 128)]
    return [(1, m, m), (2, m, 2 * m)]


def check_parity(
    generator: nn.Module,
    run: Callable[[torch.Tensor], torch.Tensor],
    spec: GeneratorSpec,
    kind: str,
) -> Parity:
    """Max |run(x) - generator(x)| on random inputs of `parity_sizes`; an ExportError above the
    tolerance of `kind` or on a wrong output shape."""
    seed = torch.Generator().manual_seed(0)
    results = []
    for batch, height, width in parity_sizes(spec):
        x = torch.rand(batch, spec.channels, height, width, generator=seed) * 2 - 1
        with torch.inference_mode():
            want, got = generator(x), run(x)
        if got.shape != want.shape:
            raise ExportError(
                f"the {kind} file gives shape {tuple(got.shape)} for input {tuple(x.shape)}, "
                f"PyTorch {tuple(want.shape)}; export format=safetensors instead"
            )
        results.append((tuple(x.shape), float((got.float() - want.float()).abs().max())))
    worst = max(diff for _, diff in results)
    if not worst <= TOLERANCE[kind]:  # NaN fails too
        raise ExportError(
            f"the {kind} file differs from the PyTorch generator by {worst:.2e} "
            f"(> {TOLERANCE[kind]:g}); nothing was written: export format=safetensors instead"
        )
    return results


def _example(spec: GeneratorSpec, batch: int) -> torch.Tensor:
    # Sides of 2+ units of the size rule and 16+ px: export specialises dimensions of 1.
    side = max(2 * spec.size_multiple, 16)
    return torch.rand(batch, spec.channels, side, side, generator=torch.Generator().manual_seed(0))


def _import_onnx() -> Any:
    """onnx, after checking that the exporter's onnxscript and the checking onnxruntime are there
    (before minutes of tracing, not after)."""
    try:
        import onnx
        import onnxruntime  # noqa: F401 (runs the parity check)
        import onnxscript  # noqa: F401 (torch.onnx's exporter needs it)
    except ImportError:
        raise ExportError(
            f"format=onnx needs the onnx, onnxscript and onnxruntime packages: {INSTALL_HINT}"
        ) from None
    return onnx


def onnx_metadata(info: dict[str, Any], spec: GeneratorSpec) -> dict[str, str]:
    """The model's metadata_props: the export JSON, and its main facts as plain strings."""
    m = spec.size_multiple
    return {
        EXPORT_FORMAT: json.dumps(info, indent=2),
        "opset": str(OPSET),
        "normalization": NORMALIZATION,
        "size_rule": f"height and width multiples of {m}; batch, height and width are dynamic",
        "direction": str(info.get("direction") or "unknown"),
        "io": str(info.get("io", "")),
    }


def write_onnx(generator: nn.Module, spec: GeneratorSpec, path: Path, info: dict[str, Any]) -> None:
    """torch.onnx.export with dynamic batch/height/width, then the metadata, into `path`."""
    onnx = _import_onnx()
    m, low = spec.size_multiple, 2 if spec.size_multiple == 4 else 1  # ResNets need 8+ px
    dim = torch.export.Dim
    axes = {0: dim("batch", min=1), 2: m * dim("h", min=low), 3: m * dim("w", min=low)}
    try:
        # verbose=False keeps the exporter's progress lines off stdout, which lists the files.
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                generator,
                (_example(spec, 2),),
                dynamo=True,
                opset_version=OPSET,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=(axes,),
                external_data=False,
                verbose=False,
            )
    except Exception as exc:  # the exporter raises many types; one line for any of them
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ExportError(
            f"torch.onnx could not export the {spec.describe()} generator ({first}); "
            "use format=torchscript or format=safetensors"
        ) from exc
    proto = program.model_proto
    onnx.helper.set_model_props(proto, onnx_metadata(info, spec))
    proto.doc_string = f"cyclegan generator ({spec.describe()}): {NORMALIZATION}"
    onnx.save(proto, str(path))


def write_torchscript(
    generator: nn.Module, spec: GeneratorSpec, path: Path, info: dict[str, Any]
) -> None:
    """torch.jit.trace, saved with the export JSON as an extra file, into `path`."""
    with warnings.catch_warnings():
        # Instance norm's size checks are evaluated once while tracing (they branch on nothing
        # the network computes), and torch.jit's deprecation notice is the module doc's.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(generator, _example(spec, 1), check_trace=False)
        extra = {TORCHSCRIPT_EXTRA: json.dumps(info, indent=2)}
        torch.jit.save(traced, str(path), _extra_files=extra)


WRITERS = {"onnx": write_onnx, "torchscript": write_torchscript}
SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript"}


def graph_info(info: dict[str, Any], kind: str) -> dict[str, Any]:
    """The export JSON of a graph file: the safetensors one, plus the format's own facts."""
    extra: dict[str, Any] = {"tolerance": TOLERANCE[kind], "normalization": NORMALIZATION}
    if kind == "onnx":
        extra |= {"opset": OPSET, "input": INPUT_NAME, "output": OUTPUT_NAME}
    else:
        extra |= {"traced_with": f"torch {torch.__version__}"}
    return {**info, kind: extra}


def save_graph(
    loaded: LoadedGenerator, path: Path, kind: str, info: dict[str, Any]
) -> tuple[Path, Parity]:
    """Write `loaded`'s generator as `kind` to `path` if it passes `check_parity`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    info = graph_info(info, kind)
    parity: Parity = []

    def write_checked(tmp: Path) -> None:
        WRITERS[kind](loaded.generator, loaded.spec, tmp, info)
        written = load_graph(tmp, kind).generator
        parity.extend(check_parity(loaded.generator, written, loaded.spec, kind))

    atomic_write(path, write_checked)
    return path, parity
