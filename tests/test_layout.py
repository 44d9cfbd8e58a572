"""The code's shape, measured: the package's folders and the one direction imports flow between
them, no import cycles, and functions and modules short enough to read whole.

A reader learns the architecture from `LAYERS`: each folder of `cyclegan/` with the folders it may
import. The top level holds only the commands users type (`python -m cyclegan.translate`, ...,
each a few lines over `cyclegan.inference`) and two shared leaves (`errors`, `files`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .conftest import ROOT

PACKAGE = ROOT / "cyclegan"
MAX_FUNCTION_LINES = 55  # "about 50"
MAX_MODULE_LINES = 420  # "about 400"
EXEMPT_MODULES = {"cyclegan.data.synthetic"}  # the scene renderer: one long, flat drawing recipe

COMMANDS = {"translate", "export", "evaluate", "pretrained"}  # python -m cyclegan.<command>
LEAVES = {"errors", "files"}  # imported from anywhere, import nothing of the package but errors

# folder -> the folders (and leaves) it may import: dependencies flow one way, from the entry
# points (training, sweeps, inference) through methods to the parts.
LAYERS: dict[str, set[str]] = {
    "parts": set(),  # networks, losses, NCE, the replay buffer, LR schedules
    "data": set(),  # datasets, transforms, the built-in set, download
    "runtime": {"parts"},  # device, precision, one process or DDP, CUDA graphs
    "checkpoints": set(),  # the checkpoint file: format, what trained it, resume rules
    "evaluation": {"data"},  # PSNR/SSIM, FID/KID, report, samples, contact images
    "methods": {"parts", "runtime"},  # training algorithms: CycleGAN, CUT/FastCUT
    "config": {"parts", "data", "evaluation"},  # schema, value checks, resolvers, preflight
    "loggers": {"config", "evaluation"},  # metrics.jsonl, W&B, TensorBoard, several at once
    "reports": {"config", "evaluation"},  # report.html of a run (and the pages' templates)
    "training": {
        "parts",
        "data",
        "runtime",
        "checkpoints",
        "evaluation",
        "methods",
        "config",
        "loggers",
        "reports",
    },  # the Hydra builder, the loop, checkpoint state, signals, exit statuses
    "inference": {
        "parts",
        "data",
        "runtime",
        "checkpoints",
        "evaluation",
    },  # translate, export, ...
    "sweeps": {"config", "evaluation", "reports"},  # grids, ranked tables, plots, reports
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def folder(module: str) -> str:
    """`cyclegan.parts.networks.unet` -> `parts`; a top-level module -> its own name."""
    return module.split(".")[1] if module != "cyclegan" else ""


def imports_of(name: str) -> set[str]:
    """The package modules `name` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            candidates = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        else:
            continue
        found |= {c for c in candidates if c in MODULES and c != name}
    return found


def closure(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for dep in imports_of(todo.pop()) - seen:
            seen.add(dep)
            todo.append(dep)
    return seen


def test_the_top_level_holds_commands_and_leaves_only() -> None:
    top = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert top == COMMANDS | LEAVES
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert folders == set(LAYERS), "a new folder needs its row in LAYERS"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_commands_are_thin(command: str) -> None:
    name = f"cyclegan.{command}"
    assert imports_of(name) == {f"cyclegan.inference.{command}"}
    assert len(MODULES[name].read_text().splitlines()) <= 10


def test_imports_flow_one_way_between_folders() -> None:
    wrong = []
    for name in MODULES:
        here = folder(name)
        if here not in LAYERS:
            continue
        allowed = LAYERS[here] | LEAVES | {here}
        wrong += [f"{name} -> {dep}" for dep in imports_of(name) if folder(dep) not in allowed]
    assert not wrong, wrong


def test_leaves_import_nothing_but_errors() -> None:
    for leaf in LEAVES:
        assert imports_of(f"cyclegan.{leaf}") <= {"cyclegan.errors"}, leaf


def test_no_import_cycles() -> None:
    # Imports inside functions count too: a deferred import still ties the two modules.
    cycles = [m for m in MODULES if m in closure(m)]
    assert not cycles, f"modules in an import cycle: {cycles}"


@pytest.mark.parametrize("tool", sorted(COMMANDS))
def test_inference_tools_never_reach_training_sweeps_or_methods(tool: str) -> None:
    reached = {folder(m) for m in closure(f"cyclegan.{tool}")}
    assert not reached & {"training", "sweeps", "methods", "loggers"}, reached


def test_one_class_per_name() -> None:
    """Two classes of one name (two `CycleGAN`s, three residual blocks) make imports lie."""
    seen: dict[str, list[str]] = {}
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                seen.setdefault(node.name, []).append(name)
    assert not {k: v for k, v in seen.items() if len(v) > 1}


def test_one_factory_verb() -> None:
    """What makes a part from settings is `build_*` (`build_generator`, `build_method`, ...)."""
    other_verbs = ("make_", "define_", "create_", "construct_")
    found = [
        f"{name}.{node.name}"
        for name, path in MODULES.items()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef) and node.name.startswith(other_verbs)
    ]
    assert not found, found


def test_functions_and_modules_are_short() -> None:
    long = []
    for name, path in MODULES.items():
        if name in EXEMPT_MODULES:
            continue
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            long.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{name}.{node.name}: {n} lines")
    assert not long, long
