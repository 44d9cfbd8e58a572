"""The code's shape, measured: imports flow one way (no cycles; inference tools never reach the
training loop or the Hydra builder), and functions and modules stay small enough to read whole."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .conftest import ROOT

PACKAGE = ROOT / "cyclegan"
MAX_FUNCTION_LINES = 55  # "about 50"
MAX_MODULE_LINES = 420  # "about 400"
EXEMPT_MODULES = {"cyclegan.data.synthetic"}  # the scene renderer: one long, flat drawing recipe


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


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


def test_no_import_cycles() -> None:
    # Imports inside functions count too: a deferred import still ties the two modules.
    cycles = [m for m in MODULES if m in closure(m)]
    assert not cycles, f"modules in an import cycle: {cycles}"


@pytest.mark.parametrize("tool", ["cyclegan.translate", "cyclegan.export", "cyclegan.evaluate"])
def test_inference_tools_never_import_the_loop_or_the_builder(tool: str) -> None:
    reached = closure(tool)
    assert not reached & {"cyclegan.loop", "cyclegan.training", "cyclegan.sweep"}, reached


def test_parts_never_import_upwards() -> None:
    upper = {"cyclegan.training", "cyclegan.loop", "cyclegan.sweep"}
    for part in ("cyclegan.models", "cyclegan.losses", "cyclegan.buffer", "cyclegan.schedule"):
        assert not closure(part) & upper, part
    assert not closure("cyclegan.methods.cyclegan") & {"cyclegan.loop", "cyclegan.training"}


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
