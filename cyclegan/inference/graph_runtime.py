"""Run an exported ONNX or TorchScript generator: the graph the file holds, no network rebuilt.

`python -m cyclegan.export format=onnx|torchscript` writes `G_AB.onnx` / `G_AB.torchscript`; each
file carries the export JSON (architecture, direction, value range, size rule) in its own metadata:
an ONNX model's `metadata_props["cyclegan-generator"]`, a TorchScript archive's extra file
`cyclegan-generator.json`. `load_graph` opens one as a module that translate treats like any
generator: (B, C, H, W) tensors in [-1, 1] in and out, with `in_channels` and `size_multiple` read
from that JSON. ONNX runs in onnxruntime (the `export` extra), TorchScript in `torch.jit.load`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cyclegan.checkpoints.file import CheckpointError
from cyclegan.inference.importers import EXPORT_FORMAT, Direction
from cyclegan.parts.networks.spec import GeneratorSpec

GRAPH_SUFFIXES = {".onnx": "onnx", ".torchscript": "torchscript"}
TORCHSCRIPT_EXTRA = f"{EXPORT_FORMAT}.json"  # the export JSON inside a TorchScript archive
INSTALL_HINT = "pip install 'cyclegan[export]' (or pip install -e '.[export]' in a checkout)"


def graph_format(path: str | Path, fmt: str = "auto") -> str | None:
    """`onnx` or `torchscript` when `path` is such an export (by suffix, or forced), else None."""
    if fmt in GRAPH_SUFFIXES.values():
        return fmt
    return GRAPH_SUFFIXES.get(Path(path).suffix.lower()) if fmt == "auto" else None


def import_onnxruntime() -> Any:
    """The onnxruntime module, or a one-line error naming the extra that installs it."""
    try:
        import onnxruntime
    except ImportError:
        raise CheckpointError(
            f"ONNX files run in onnxruntime, which is not installed: {INSTALL_HINT}"
        ) from None
    return onnxruntime


class GraphGenerator(nn.Module):
    """A generator held as a graph: `graph` maps (B, C, H, W) in [-1, 1] to the translation.

    Exposes what translate reads off our generators (`in_channels`, `out_channels`,
    `size_multiple`), taken from the export JSON. A TorchScript module is a submodule, so
    `.to(device)` moves it; an onnxruntime session is a plain function and stays where it runs.
    """

    def __init__(self, graph: Callable[[torch.Tensor], torch.Tensor], spec: GeneratorSpec) -> None:
        super().__init__()
        self.graph = graph
        self.in_channels = spec.channels
        self.out_channels = spec.out_channels or spec.channels
        self.size_multiple = spec.size_multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, H, W) -> (B, C_out, H, W)
        return self.graph(x)


@dataclass
class LoadedGraph:
    """An exported graph ready to run, and what its metadata says (for logs and checks)."""

    generator: GraphGenerator
    spec: GeneratorSpec
    kind: str  # "onnx" or "torchscript"
    direction: Direction | None
    source: Path
    info: dict[str, Any]
    where: str  # what runs it: "onnxruntime (CPUExecutionProvider)", "torch.jit (cpu)"


def _read_info(text: str | bytes | None, path: Path) -> dict[str, Any]:
    info = json.loads(text) if text else {}
    if info.get("format") != EXPORT_FORMAT or "architecture" not in info:
        raise CheckpointError(
            f"'{path}' carries no cyclegan export metadata; export it with "
            "python -m cyclegan.export format=onnx|torchscript"
        )
    return info


def onnx_providers(device: str, available: list[str]) -> list[Any]:
    """onnxruntime's execution providers for translate's `device=` (auto: CUDA when present)."""
    has_cuda = "CUDAExecutionProvider" in available
    if device in ("auto", "cpu"):
        return (["CUDAExecutionProvider"] if device == "auto" and has_cuda else []) + [
            "CPUExecutionProvider"
        ]
    target = torch.device(device)
    if target.type != "cuda":
        raise ValueError(f"device={device}: onnxruntime runs ONNX files on cpu or cuda here")
    if not has_cuda:
        raise ValueError(
            f"device={device}: this onnxruntime has no CUDA provider (pip install "
            "onnxruntime-gpu), or use device=cpu"
        )
    return [("CUDAExecutionProvider", {"device_id": target.index or 0}), "CPUExecutionProvider"]


def _open_onnx(path: Path, device: str) -> tuple[Callable[[torch.Tensor], torch.Tensor], str, str]:
    ort = import_onnxruntime()
    providers = onnx_providers(device, ort.get_available_providers())
    try:
        session = ort.InferenceSession(str(path), providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types for unreadable files
        first = str(exc).strip().splitlines()[0][:200]
        raise CheckpointError(f"'{path}' is not a readable ONNX model ({first})") from None
    name_in, name_out = session.get_inputs()[0].name, session.get_outputs()[0].name

    def run(x: torch.Tensor) -> torch.Tensor:
        y = session.run(
            [name_out], {name_in: np.ascontiguousarray(x.detach().float().cpu().numpy())}
        )[0]
        return torch.from_numpy(y).to(x.device)

    meta = session.get_modelmeta().custom_metadata_map.get(EXPORT_FORMAT)
    return run, meta, f"onnxruntime ({session.get_providers()[0]})"


def _open_torchscript(path: Path) -> tuple[nn.Module, str]:
    import warnings

    extra = {TORCHSCRIPT_EXTRA: ""}
    try:
        with warnings.catch_warnings():  # torch.jit is deprecated upstream; it still loads
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except (RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise CheckpointError(f"'{path}' is not a readable TorchScript archive ({first})") from None
    return module.eval(), extra[TORCHSCRIPT_EXTRA]


def load_graph(
    path: str | Path, kind: str, direction: str | None = None, device: str = "cpu"
) -> LoadedGraph:
    """Open an ONNX or TorchScript export (`kind` from `graph_format`) for translate."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file '{path}' not found; check the ckpt= path")
    if kind == "onnx":
        run, text, where = _open_onnx(path, device)
    else:
        run, text = _open_torchscript(path)
        where = "torch.jit"
    info = _read_info(text, path)
    held = Direction(info["direction"]) if info.get("direction") else None
    if direction is not None and held is not None and Direction(direction) is not held:
        raise CheckpointError(
            f"'{path}' is the {held} generator but direction={direction} was asked; use the "
            f"{Direction(direction).container_key} export instead"
        )
    spec = GeneratorSpec.from_dict(info["architecture"])
    return LoadedGraph(GraphGenerator(run, spec), spec, kind, held, path, info, where)
