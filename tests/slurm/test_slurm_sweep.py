"""sweep.py on a real SLURM cluster: a grid's jobs are SLURM jobs and rank as the basic launcher's
do; a job that fails there is reported with SLURM's job id and its error."""

from __future__ import annotations

import csv
import json
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ..test_sweep import run_sweep
from .scheduler import NODE, job_id_of, sacct, squeue_states, started, table, wait_ended

pytestmark = pytest.mark.slurm

SMOKE = ["+experiment=cpu_smoke", "trainer.progress=false"]
TIMINGS = ("time/",)  # wall-clock values: the only summary keys two launchers may differ in


def _watch(proc: subprocess.Popen, name: str) -> tuple[str, dict[str, set[str]]]:
    """Poll squeue while the sweep runs: {job id: states seen}; the sweep's output."""
    seen: dict[str, set[str]] = {}
    while proc.poll() is None:
        for job, state in squeue_states(name).items():
            seen.setdefault(job, set()).add(state)
        time.sleep(0.5)
    return proc.communicate()[0], seen


def _job_rows(sweep: Path) -> dict[str, dict[str, str]]:
    """comparison.csv's job rows by overrides, without the columns of wall-clock times."""
    with (sweep / "comparison.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r["kind"] == "job"]
    return {
        r["overrides"]: {k: v for k, v in r.items() if not k.startswith(TIMINGS) and k != "job"}
        for r in rows
    }


def _summaries(sweep: Path) -> dict[str, dict[str, float]]:
    """Each job's summary.json by its overrides, without wall-clock times."""
    out = {}
    for job in sorted(p for p in sweep.iterdir() if (p / "summary.json").is_file()):
        summary = json.loads((job / "summary.json").read_text())
        lr = next(o for o in (job / ".hydra" / "overrides.yaml").read_text().split() if "lr=" in o)
        out[lr] = {k: v for k, v in summary.items() if not k.startswith(TIMINGS)}
    return out


def test_grid_jobs_are_slurm_jobs_ranked_as_with_the_basic_launcher(
    slurm_cluster: str, data_dir: Path, tmp_path: Path
) -> None:
    name = "slurm-sweep"
    sweep = tmp_path / "slurm"
    args = ["lr_grid", *SMOKE, f"paths.data_dir={data_dir}"]
    began = time.perf_counter()
    slurm_args = [*args, "hydra/launcher=slurm", *NODE, f"hydra.launcher.name={name}"]
    with started("sweep.py", [*slurm_args, f"hydra.sweep.dir={sweep}"], tmp_path, name) as proc:
        out, seen = _watch(proc, name)
    slurm_s = time.perf_counter() - began
    assert proc.returncode == 0, out[-4000:]

    # Every job of the grid was a SLURM job, seen running in squeue, recorded in its run directory
    # (Hydra's job id, which submitit sets to SLURM's) and COMPLETED in sacct.
    ids = {job_id_of(sweep / str(n)) for n in range(3)}
    wait_ended(ids)
    rows = sacct(ids)
    print(f"\nsweep on SLURM, {slurm_s:.0f} s:\n{table(rows)}")
    assert len(ids) == 3 and {job for job, states in seen.items() if "RUNNING" in states} == ids
    assert {r.job_id: r.state for r in rows if not r.is_step} == dict.fromkeys(ids, "COMPLETED")

    # The same grid with the basic launcher, in this process's one thread per job: the launcher
    # config gave the SLURM jobs one thread each (cpus_per_task=1), or their sums would differ.
    began = time.perf_counter()
    basic = tmp_path / "basic"
    local = run_sweep([*args, f"hydra.sweep.dir={basic}"], cwd=tmp_path)
    basic_s = time.perf_counter() - began
    assert local.returncode == 0, local.stdout[-3000:] + local.stderr[-3000:]
    print(f"the same grid with the basic launcher: {basic_s:.0f} s")

    summaries = _summaries(sweep)
    assert sorted(summaries) == ["optim.lr=0.0001", "optim.lr=0.0002", "optim.lr=0.0004"]
    assert summaries == _summaries(basic)  # every metric value equal, to the last bit
    assert _job_rows(sweep) == _job_rows(basic)  # the same ranking and values in the table
    sheets = [np.asarray(Image.open(d / "contact_AB.png")) for d in (sweep, basic)]
    assert sheets[0].shape == sheets[1].shape and np.array_equal(*sheets)
    assert "ranked by eval/psnr_AB (max); 0 failed" in out


def test_a_job_failing_on_the_cluster_is_reported_with_its_slurm_id(
    slurm_cluster: str, data_dir: Path, tmp_path: Path
) -> None:
    name = "slurm-sweep-bad-job"
    sweep = tmp_path / "sweep"
    args = [
        "lr_grid",
        *SMOKE,
        "optim.lr=0.0002,-1",  # the second job's learning rate is refused where it runs
        "hydra/launcher=slurm",
        *NODE,
        f"hydra.launcher.name={name}",
        f"paths.data_dir={data_dir}",
        f"hydra.sweep.dir={sweep}",
    ]
    with started("sweep.py", args, tmp_path, name) as proc:
        out = proc.communicate(timeout=300)[0]
    good, bad = job_id_of(sweep / "0"), job_id_of(sweep / "1")
    wait_ended([good, bad])
    rows = sacct([good, bad])
    print(f"\nsweep with a bad job on SLURM:\n{table(rows)}")
    assert proc.returncode == 1, out[-4000:]  # a job failed
    states = {r.job_id: (r.state, r.exit_code) for r in rows if not r.is_step}
    # The scheduler sees the failed job fail, and the good one complete.
    assert states == {good: ("COMPLETED", "0:0"), bad: ("FAILED", "2:0")}, states
    ranked = [line for line in out.splitlines() if line.startswith("1 ")]
    assert len(ranked) == 1 and "optim.lr=0.0002" in ranked[0] and ranked[0].rstrip().endswith("ok")
    failed = next(line for line in out.splitlines() if line.startswith("-     optim.lr=-1 "))
    assert f"failed (SLURM job {bad}): optim.lr=-1.0: must be > 0" in failed, out[-3000:]
    assert "2 jobs in" in out and "1 failed" in out
