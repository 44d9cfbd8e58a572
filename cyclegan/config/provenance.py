"""Where a run came from: the code's commit, the command, the software and the device.

A number means little without what produced it: the same config on another commit, another torch or
another GPU can train differently. Every run writes `<run dir>/provenance.json` (rank 0, before
training) and hands the same record to its loggers (W&B config, TensorBoard hyper-parameters);
`sweep.py` compares the records of the jobs it ranks. Nothing here may fail a run: whatever cannot be
found out (no git, code not in a repository, no CUDA) is recorded as "unknown" or null.

A directory that already has a record (a resumed training) keeps the earlier processes' records
under `earlier`, oldest first, so a run resumed on another commit says so.
"""

from __future__ import annotations

import json
import platform
import re
import shlex
import subprocess
import sys
import tomllib
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from cyclegan.files import atomic_write

FILE = "provenance.json"
UNKNOWN = "unknown"
PACKAGE = "cyclegan"
CODE_ROOT = Path(__file__).resolve().parents[2]  # the checkout that holds cyclegan/, if any
MAX_CHANGED = 20  # changed paths listed when the tree is dirty (the count is always given)


def _git(root: Path, *args: str) -> str | None:
    """`git -C root ARGS` output, or None when git is missing, slow or says no."""
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def git_state(root: Path = CODE_ROOT) -> dict[str, Any]:
    """{"commit", "dirty", "changed"} of the repository that tracks this package's code, or
    "unknown" values when there is none (an installed wheel, no git, a copied folder). `dirty`
    counts untracked files too (a new module changes what runs); ignored ones (outputs/) never."""
    unknown = {"commit": UNKNOWN, "dirty": UNKNOWN, "changed": []}
    # The package must be tracked by this repository, not merely sit inside some other one.
    if _git(root, "ls-files", "--error-unmatch", f"{PACKAGE}/__init__.py") is None:
        return unknown
    commit = (_git(root, "rev-parse", "HEAD") or "").strip()
    status = _git(root, "status", "--porcelain")
    if not commit or status is None:
        return unknown
    changed = [line[3:] for line in status.splitlines() if line.strip()]
    return {
        "commit": commit,
        "dirty": bool(changed),
        "changed": changed[:MAX_CHANGED],
        "n_changed": len(changed),
    }


def _requirement_name(requirement: str) -> str | None:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return match.group(1) if match else None


def declared_dependencies(root: Path = CODE_ROOT) -> tuple[list[str], list[str]]:
    """(required, optional) distribution names of the project: from the checkout's
    pyproject.toml (the source of truth while developing), else the installed metadata."""
    pyproject = root / "pyproject.toml"
    required: list[str | None]
    optional: list[str | None]
    if pyproject.is_file():
        project = tomllib.loads(pyproject.read_text()).get("project", {})
        required = [_requirement_name(r) for r in project.get("dependencies", [])]
        extras = project.get("optional-dependencies", {}).values()
        optional = [_requirement_name(r) for group in extras for r in group]
    else:
        try:
            requires = metadata.requires(PACKAGE) or []
        except metadata.PackageNotFoundError:
            requires = []
        required = [_requirement_name(r) for r in requires if "extra ==" not in r]
        optional = [_requirement_name(r) for r in requires if "extra ==" in r]
    req = sorted({n for n in required if n})
    return req, sorted({n for n in optional if n} - set(req))


def package_versions(root: Path = CODE_ROOT) -> dict[str, str | None]:
    """Installed version of each dependency (None: a required one is missing); optional ones
    (the extras) only where installed."""
    required, optional = declared_dependencies(root)
    versions: dict[str, str | None] = {}
    for name in [*required, *optional]:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if name in required:
                versions[name] = None
    return versions


def cpu_name() -> str:
    """The processor's model name (Linux: /proc/cpuinfo), else what platform says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or UNKNOWN


def device_name(device: torch.device | str) -> str:
    """`NVIDIA H200`, `Apple MPS`, or the CPU's model name."""
    device = torch.device(device)
    try:
        if device.type == "cuda":
            return torch.cuda.get_device_name(device)
        if device.type == "mps":
            return "Apple MPS"
    except Exception:  # a driver that cannot answer: the run goes on
        return UNKNOWN
    return cpu_name()


def software() -> dict[str, Any]:
    """Python, torch, and the CUDA and cuDNN torch was built with (null on CPU-only builds)."""
    cudnn = None
    try:
        cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    except Exception:
        cudnn = None
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": cudnn,
        "platform": platform.platform(),
    }


def collect(device: torch.device | str, argv: list[str] | None = None) -> dict[str, Any]:
    """This process's record: time, command, git, software, device, package versions."""
    args = list(sys.argv if argv is None else argv)
    found = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join([Path(sys.executable).name, *args]),
        "argv": args,
        "cwd": str(Path.cwd()),
        "git": git_state(),
        **software(),
        "device": str(device),
        "device_name": device_name(device),
        "packages": package_versions(),
    }
    # Plain JSON types only (torch.__version__ is a str subclass YAML writers refuse).
    return json.loads(json.dumps(found, default=str))


def read(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's provenance.json, or None when it has none (older runs) or it is unreadable."""
    try:
        data = json.loads((Path(run_dir) / FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def record(run_dir: str | Path, device: torch.device | str) -> dict[str, Any]:
    """Write `<run dir>/provenance.json` for this process (the directory's earlier records kept
    under `earlier`) and return this process's record, for the loggers."""
    mine = collect(device)
    previous = read(run_dir)
    data = dict(mine)
    if previous is not None:
        earlier = previous.pop("earlier", [])
        data["earlier"] = [*earlier, previous]
    text = json.dumps(data, indent=2) + "\n"
    atomic_write(Path(run_dir) / FILE, lambda tmp: tmp.write_text(text), fsync=False)
    return mine


def commits(data: dict[str, Any] | None) -> list[str]:
    """Every commit a run's processes ran on, first to last ("unknown" where not known)."""
    if data is None:
        return []
    found = [
        str((r.get("git") or {}).get("commit", UNKNOWN)) for r in [*data.get("earlier", []), data]
    ]
    return list(dict.fromkeys(found))
