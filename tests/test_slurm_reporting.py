"""What a SLURM user sees of a failed job without a cluster at hand: sweep.py names the SLURM job id
and the error (from the run's log, else from SLURM's), and a job of a multirun that submitit ran
on SLURM leaves with its exit status, so sacct shows it FAILED. The same on a real cluster:
tests/slurm/test_slurm_sweep.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from cyclegan.sweeps.sweep import report

from .conftest import ROOT, TINY
from .test_sweep import job_rows, make_job, read_csv

SLURM_LAUNCHER = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"


def _ran_on_slurm(job_dir: Path, job_id: str, launcher: str = SLURM_LAUNCHER) -> None:
    """The .hydra/hydra.yaml submitit leaves: the launcher and SLURM's job id."""
    hydra = {"hydra": {"launcher": {"_target_": launcher}, "job": {"id": job_id, "num": 0}}}
    OmegaConf.save(OmegaConf.create(hydra), job_dir / ".hydra" / "hydra.yaml")


def test_a_failed_slurm_job_is_named_by_its_job_id(tmp_path: Path, capsys) -> None:
    sweep = tmp_path / "sweep"
    make_job(sweep, 0, ["optim.lr=2e-4"], {"eval/psnr_AB": 20.0})
    make_job(sweep, 1, ["optim.lr=-1"], None, error="optim.lr=-1.0: must be > 0")
    # Killed by SLURM before the run logged an error: the reason is in SLURM's log of the job.
    make_job(sweep, 2, ["optim.lr=1"], None)
    slurm_log = sweep / ".submitit" / "7_2" / "7_2_0_log.err"
    slurm_log.parent.mkdir(parents=True)
    slurm_log.write_text(
        "epoch 1/2: 50%\n"
        "slurmstepd: error: *** JOB 9 ON node1 CANCELLED AT 2026-12-02T10:00:00 DUE TO TIME LIMIT ***\n"
    )
    for num, job_id in enumerate(["7_0", "7_1", "7_2"]):
        _ran_on_slurm(sweep / str(num), job_id)

    assert report(sweep, metric=None, mode=None, plot="train/loss_cycle") == 1
    rows = job_rows(read_csv(sweep / "comparison.csv"))
    assert [r["status"] for r in rows] == [
        "ok",
        "failed (SLURM job 7_1): optim.lr=-1.0: must be > 0",
        "failed (SLURM job 7_2): slurmstepd: error: *** JOB 9 ON node1 CANCELLED AT "
        "2026-12-02T10:00:00 DUE TO TIME LIMIT ***",
    ]
    assert "failed (SLURM job 7_1): optim.lr=-1.0" in capsys.readouterr().out


def test_other_launchers_name_no_slurm_job(tmp_path: Path) -> None:
    """The local launchers set Hydra's job id too (submitit_local to its own ids): not SLURM's."""
    sweep = tmp_path / "sweep"
    make_job(sweep, 0, ["optim.lr=2e-4"], {"eval/psnr_AB": 20.0})
    make_job(sweep, 1, ["optim.lr=-1"], None, error="optim.lr=-1.0: must be > 0")
    _ran_on_slurm(sweep / "1", "12345", launcher="hydra_plugins.x.submitit_launcher.LocalLauncher")
    report(sweep, metric=None, mode=None, plot="train/loss_cycle")
    rows = job_rows(read_csv(sweep / "comparison.csv"))
    assert rows[1]["status"] == "failed: optim.lr=-1.0: must be > 0"


@pytest.mark.parametrize(("executor", "status"), [("slurm", 2), (None, 1)])
def test_a_failed_job_under_submitit_slurm_exits_with_its_status(
    tmp_path: Path, executor: str | None, status: int
) -> None:
    """A multirun whose job fails: Hydra ends it with 1; in a job of submitit's SLURM executor
    (SUBMITIT_EXECUTOR=slurm, one job per process) the job's own status (2, the user's input)
    wins, after Hydra's launcher has the error as the job's result."""
    env = {k: v for k, v in os.environ.items() if k != "SUBMITIT_EXECUTOR"}
    env.update(OMP_NUM_THREADS="1", HYDRA_FULL_ERROR="0")
    if executor:
        env["SUBMITIT_EXECUTOR"] = executor
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            "-m",
            *TINY,
            "optim.lr=-1",
            "logger=none",
            f"paths.data_dir={tmp_path / 'data'}",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == status, proc.stderr[-3000:]
    assert "optim.lr=-1.0: must be > 0" in proc.stderr + proc.stdout
