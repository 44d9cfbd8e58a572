"""Who a run is within Hydra: its name, group, job type and tags, for experiment trackers.

A single run is named by its command-line overrides; the jobs of one multirun share a group named
after the sweep directory and are each named by the overrides the sweep varies. Kept apart from the
W&B logger so sweep.py can name the group without importing torch or wandb.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

STAMP_FORMAT = "%Y-%m-%d_%H-%M-%S"


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


def unique_stamp(
    pattern: str = STAMP_FORMAT, now: datetime | None = None, pid: int | None = None
) -> str:
    """`<now in pattern>_<microseconds>-<pid>`: e.g. `2026-11-30_18-20-01_123456-4821`.

    Directories stamped to the second collide when two runs or sweeps start in the same second
    (a launcher starting jobs at once, a script starting sweeps in a loop): both would write into
    one directory. The microseconds keep stamps sorted by start time; the process id separates two
    processes on one host even where the clock is coarse (Windows: ~15 ms).
    """
    now = now or datetime.now()
    return f"{now.strftime(pattern or STAMP_FORMAT)}_{now.microsecond:06d}-{pid or os.getpid()}"


def claim_stamped_dir(parent: str | Path, pattern: str = STAMP_FORMAT) -> Path:
    """Create and return `parent/<unique_stamp>`, a directory no other caller got (mkdir is atomic:
    a name that exists already, however unlikely, is stamped again)."""
    Path(parent).mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        path = Path(parent) / unique_stamp(pattern)
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"could not create a new stamped directory in {parent}")


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
