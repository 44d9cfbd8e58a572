"""W&B's service stopped with the training, as SLURM stops it on pre-emption: the next attempt sends
the lost steps again, so the W&B run still holds every step once (found on a real SLURM cluster:
tests/slurm/test_slurm_ddp.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cyclegan.loggers.wandb_logger import WandbLogger

from .conftest import ROOT
from .wandb_files import offline_runs, read_wandb_run

# The first attempt: logs steps 1-5, then gets what SLURM sends every process of a job on
# pre-emption, SIGTERM, to W&B's service too (which exits at once, its run unclosed); the
# training then logs the step it was in and ends, as the stop signal makes it.
FIRST_ATTEMPT = """
import os, signal, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from cyclegan.loggers.wandb_logger import WandbLogger

logger = WandbLogger({run!r}, config={{"a": 1}}, mode="offline")
for step in range(1, 6):
    logger.log_metrics({{"train/loss_G": float(step)}}, step=step, epoch=0)
for proc in Path("/proc").iterdir():  # W&B's service: a child of this process
    try:
        stat = (proc / "stat").read_text()
    except OSError:
        continue
    if stat.rsplit(")", 1)[1].split()[1] == str(os.getpid()):
        os.kill(int(proc.name), signal.SIGTERM)
time.sleep(1)
logger.log_metrics({{"train/loss_G": 6.0}}, step=6, epoch=0)
logger.finish("preempted")
"""


def _steps(run: Path) -> tuple[set[str], list[int]]:
    """Run ids and logged steps of the W&B offline runs `wandb sync` would upload."""
    runs = [read_wandb_run(p) for p in offline_runs(run)]
    return {wb.run["run_id"] for wb in runs}, [h["_step"] for wb in runs for h in wb.history]


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds W&B's service in /proc")
def test_steps_an_unclosed_attempt_lost_are_sent_again(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    run = tmp_path / "run"
    script = FIRST_ATTEMPT.format(root=str(ROOT), run=str(run))
    # Its own W&B service, as a job's process has (not this process's, which W&B names in
    # WANDB_SERVICE once it started one).
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((run / "wandb_run.json").read_text())
    assert record["closed"] is False and record["last_step"] == 5, record  # sent, not kept
    [unclosed] = offline_runs(run)
    assert Path(record["dir"]) == unclosed

    # The requeued attempt, resumed from the checkpoint of step 6: sends 1-6 again from
    # metrics.jsonl, then trains on from step 7.
    logger = WandbLogger(run, config={"a": 1}, mode="offline", resume=True)
    assert logger.resumed_step == 6
    for step in (7, 8):
        logger.log_metrics({"train/loss_G": float(step)}, step=step, epoch=0)
    logger.finish()

    assert not unclosed.exists() and (unclosed.parent / f"unclosed-{unclosed.name}").is_dir()
    ids, steps = _steps(run)
    assert ids == {record["id"]} and steps == list(range(1, 9))  # one run, each step once
    values = [
        h["train/loss_G"] for wb in map(read_wandb_run, offline_runs(run)) for h in wb.history
    ]
    assert values == [float(s) for s in range(1, 9)]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 9))  # the file has every row once too
    assert json.loads((run / "wandb_run.json").read_text())["closed"] is True
