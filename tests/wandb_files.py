"""Reading an offline W&B run back with W&B's own tooling (`wandb leet inspect`), not our calls."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class WandbRun:
    """What an offline run's .wandb transaction log holds."""

    path: Path
    records: list[dict[str, Any]]  # every record of the log, in order
    run: dict[str, Any]  # the run record: run_id, display_name, run_group, job_type, tags, config
    history: list[dict[str, Any]]  # one item per logged step
    summary: dict[str, Any]  # `wandb leet inspect --summary`: state, summary, exit_code, ...

    @property
    def config(self) -> dict[str, Any]:
        return self.run["config"]["update"]


def _leet(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "wandb", "leet", "inspect", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return proc.stdout


def read_wandb_run(path: Path) -> WandbRun:
    records = [json.loads(line) for line in _leet("--json", str(path)).splitlines() if line]
    run = next(r["run"] for r in records if r["type"] == "run")
    history = [r["history"]["item"] for r in records if r["type"] == "history"]
    summary = json.loads(_leet("--summary", "--json", str(path)))
    return WandbRun(path=path, records=records, run=run, history=history, summary=summary)


def offline_runs(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "wandb").glob("offline-run-*"))
