"""Who a run is within Hydra: its name, group, job type and tags, for experiment trackers.

A single run is named by its command-line overrides; the jobs of one multirun share a group named
after the sweep directory and are each named by the overrides the sweep varies. Kept apart from the
W&B logger so sweep.py can name the group without importing torch or wandb.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RunIdentity:
    """How a run is named and grouped in W&B (None: let W&B choose)."""

    name: str | None = None
    group: str | None = None
    job_type: str | None = None
    tags: list[str] = field(default_factory=list)


def sweep_group(sweep_dir: str | Path) -> str:
    """The W&B group of a multirun's jobs: `<parent>-<leaf>` of the sweep directory.

    `multirun/lambda_grid/2026-11-26_16-30-00` -> `lambda_grid-2026-11-26_16-30-00`: the grid's name
    and its start time, the same string for every job of the sweep (sweep.py prints it).
    """
    path = Path(sweep_dir)
    return f"{path.parent.name}-{path.name}" if path.parent.name else path.name


def _override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _swept_keys(sweeper_params: Any, sweep_dir: Path) -> set[str]:
    """Keys a multirun varies: the sweeper's `params` and the command line's sweep overrides.

    The command line's are read back from the `multirun.yaml` that Hydra's basic sweeper saves in
    the sweep directory before it launches any job (a job sees only its own, expanded overrides).
    """
    keys = set(sweeper_params or {})
    saved = sweep_dir / "multirun.yaml"
    if saved.is_file():
        from hydra.core.override_parser.overrides_parser import OverridesParser
        from omegaconf import OmegaConf

        task = OmegaConf.load(saved).hydra.overrides.task
        parsed = OverridesParser.create().parse_overrides([str(o) for o in task])
        keys |= {o.get_key_element().lstrip("+~") for o in parsed if o.is_sweep_override()}
    return keys


def hydra_identity() -> RunIdentity:
    """Name, group, job type and tags of the running Hydra job; empty outside Hydra (tests)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return RunIdentity()
    hc = HydraConfig.get()
    overrides = [str(o) for o in hc.overrides.task]
    tags = [
        f"{group}:{option}"[:64]  # W&B caps a tag at 64 characters
        for group, option in hc.runtime.choices.items()
        if option and not group.startswith("hydra") and group != "schema"
    ]
    if hc.mode != RunMode.MULTIRUN:
        return RunIdentity(name=",".join(overrides) or None, job_type=hc.job.name, tags=tags)
    sweep_dir = Path(hc.sweep.dir)
    swept = _swept_keys(hc.sweeper.get("params"), sweep_dir)
    shown = [o for o in overrides if _override_key(o) in swept] or overrides
    return RunIdentity(
        name=",".join(shown) or f"job{hc.job.num}",
        group=sweep_group(sweep_dir),
        job_type=hc.job.name,
        tags=[*tags, "multirun"],
    )
