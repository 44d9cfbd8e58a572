"""Optional Hydra plugins (launchers, the Optuna sweeper): which pip extra installs each.

Hydra's own error for a missing plugin ("Could not find 'hydra/launcher/joblib'") does not say what
to install, so the entry points look at the command line (and the experiment files it selects)
first and stop with one line that names the extra.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

EXIT_MISSING_PLUGIN = 2


@dataclass(frozen=True)
class Plugin:
    module: str
    package: str
    extra: str


JOBLIB = Plugin("hydra_plugins.hydra_joblib_launcher", "hydra-joblib-launcher", "sweep")
SUBMITIT = Plugin("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher", "slurm")
OPTUNA = Plugin("hydra_plugins.hydra_optuna_sweeper", "hydra-optuna-sweeper", "sweep")

# (config group, option) -> the plugin it needs; our own options in conf/hydra/launcher included.
PLUGINS: dict[tuple[str, str], Plugin] = {
    ("hydra/launcher", "joblib"): JOBLIB,
    ("hydra/launcher", "parallel"): JOBLIB,
    ("hydra/launcher", "submitit_local"): SUBMITIT,
    ("hydra/launcher", "submitit_slurm"): SUBMITIT,
    ("hydra/launcher", "slurm"): SUBMITIT,
    ("hydra/launcher", "slurm_ddp"): SUBMITIT,
    ("hydra/sweeper", "optuna"): OPTUNA,
}
EXPERIMENT_GROUPS = {"experiment": "", "experiment/sweeps": "sweeps"}


def is_installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _split(override: str) -> tuple[str, str]:
    key, _, value = override.partition("=")
    return key.removeprefix("override ").lstrip("+~").strip().lstrip("/"), value.strip()


def experiment_settings(path: Path) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """The group choices in an experiment file's defaults list, and its hydra.sweeper node."""
    if not path.is_file():
        return [], {}
    data = OmegaConf.to_container(OmegaConf.load(path)) or {}
    choices = []
    for entry in data.get("defaults", []):  # type: ignore[union-attr]
        if isinstance(entry, dict):
            choices += [_split(f"{k}={v}") for k, v in entry.items()]
    sweeper = (data.get("hydra") or {}).get("sweeper") or {}  # type: ignore[union-attr]
    return choices, sweeper


def requested_choices(
    overrides: Iterable[str], experiments_dir: Path
) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """(group, option) pairs a command selects, directly or through experiment files, and the
    `hydra.sweeper.*` values it sets (for the storage check)."""
    choices: list[tuple[str, str]] = []
    sweeper: dict[str, str] = {}
    for override in overrides:
        key, value = _split(override)
        if key in EXPERIMENT_GROUPS:
            found, node = experiment_settings(
                experiments_dir / EXPERIMENT_GROUPS[key] / f"{value}.yaml"
            )
            choices += found
            sweeper.update({k: str(v) for k, v in node.items() if not isinstance(v, dict)})
        elif key.startswith("hydra.sweeper."):
            sweeper[key.removeprefix("hydra.sweeper.")] = value
        else:
            choices.append((key, value))
    return choices, sweeper


def missing_plugin_message(
    overrides: Iterable[str],
    experiments_dir: Path,
    installed: Callable[[str], bool] | None = None,
) -> str | None:
    """One line naming the extra to install, or None when everything the command needs is there."""
    installed = installed or is_installed
    choices, sweeper = requested_choices(list(overrides), experiments_dir)
    for group, option in choices:
        plugin = PLUGINS.get((group, option))
        if plugin is not None and not installed(plugin.module):
            return (
                f"{group}={option} needs the {plugin.package} plugin: "
                f'pip install -e ".[{plugin.extra}]"'
            )
    uses_optuna = any(PLUGINS.get(c) is OPTUNA for c in choices)
    if uses_optuna and str(sweeper.get("storage", "")).startswith("sqlite"):
        try:
            major = int(importlib.metadata.version("sqlalchemy").split(".")[0])
        except importlib.metadata.PackageNotFoundError:
            major = 0  # optuna brings it; without it Optuna's own error is clear enough
        if major >= 2:
            return (
                "hydra.sweeper.storage=sqlite:... needs SQLAlchemy < 2 (the Optuna 2 that "
                'hydra-optuna-sweeper requires cannot use 2.x): pip install -e ".[sweep]"'
            )
    return None


def require_plugins(overrides: Iterable[str], experiments_dir: Path) -> None:
    """Exit with the message (status 2) if the command needs a plugin that is not installed."""
    message = missing_plugin_message(overrides, experiments_dir)
    if message is not None:
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_MISSING_PLUGIN)
