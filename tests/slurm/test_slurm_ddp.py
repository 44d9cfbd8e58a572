"""One DDP training over SLURM tasks (hydra/launcher=slurm_ddp) on a real cluster: one job, two
ranks, the weights torchrun's two processes reach; and the same job stopped by the scheduler, a
pre-emption (`scontrol requeue`) and a time-out (SLURM's --signal before the time limit), requeued
and resumed to the same weights, every step trained and logged once."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cyclegan.checkpoints.file import load_checkpoint

from ..conftest import ROOT
from ..wandb_files import offline_runs, read_wandb_run
from .scheduler import (
    NODE,
    command_env,
    job_id_of,
    metric_lines,
    sacct,
    scheduler,
    show_job,
    started,
    table,
    wait_ended,
    wait_until,
)

pytestmark = pytest.mark.slurm

EPOCHS = 4  # the smoke recipe's 8 steps an epoch; 4 epochs leave time to pre-empt mid-run
TRAINING = [
    "+experiment=cpu_smoke",
    "trainer.progress=false",
    "trainer.strategy=ddp",
    "resume=auto",
    "logger.wandb.mode=offline",
]
SLURM_DDP = ["hydra/launcher=slurm_ddp", *NODE, "hydra.launcher.tasks_per_node=2"]


def _submit(
    name: str, sweep: Path, data: Path, *extra: str
) -> contextlib.AbstractContextManager[subprocess.Popen]:
    """`train.py -m` with the slurm_ddp launcher: 2 tasks, the smoke recipe for EPOCHS epochs."""
    args = [
        "-m",
        *TRAINING,
        f"schedule.n_epochs={EPOCHS}",
        *SLURM_DDP,
        "hydra.launcher.mem_gb=4",
        f"hydra.launcher.name={name}",
        *extra,
        f"paths.data_dir={data}",
        f"hydra.sweep.dir={sweep}",
    ]
    return started("train.py", args, sweep.parent, name)


def _finish(proc: subprocess.Popen, timeout: float = 400) -> str:
    out = proc.communicate(timeout=timeout)[0]
    assert proc.returncode == 0, out[-4000:]
    return out


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "checkpoints" / "last.pt")["model"]


def _same_weights(a: Path, b: Path) -> bool:
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def _logged_steps(run: Path) -> list[int]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["step"] for r in rows if "train/loss_G" in r]


def _wandb_steps(run: Path) -> tuple[set[str], list[int]]:
    """The W&B run ids of the run's offline runs (one per attempt) and the training steps they
    logged, in order, read back with W&B's own reader."""
    runs = [read_wandb_run(p) for p in offline_runs(run)]
    ids = {wb.run["run_id"] for wb in runs}
    steps = [h["_step"] for wb in runs for h in wb.history if "train/loss_G" in h]
    return ids, steps


def _running(sweep: Path) -> str:
    """The job id once the job trains (its first loss line is in metrics.jsonl)."""
    run = sweep / "0"
    wait_until(lambda: metric_lines(run) >= 1, 180, "the job's first logged step")
    return job_id_of(run)


@pytest.fixture(scope="module")
def reference(slurm_cluster: str, data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The uninterrupted slurm_ddp run: its sweep directory and sacct rows."""
    sweep = tmp_path_factory.mktemp("slurm_ddp") / "sweep"
    with _submit("slurm-ddp", sweep, data_dir) as proc:
        _finish(proc)
    job = job_id_of(sweep / "0")
    wait_ended([job])
    return sweep, sacct([job])


def test_one_job_two_ranks_the_weights_of_torchrun(reference, data_dir: Path, tmp_path: Path):
    sweep, rows = reference
    print(f"\nslurm_ddp, 2 tasks:\n{table(rows)}")
    job, step = rows[0].job_id, f"{rows[0].job_id}.0"
    # One SLURM job whose one step ran 2 tasks, and one run directory.
    assert [r.state for r in rows if not r.is_step] == ["COMPLETED"], table(rows)
    assert {r.job_id: r.ntasks for r in rows}[step] == "2", table(rows)
    assert sorted(p.name for p in sweep.iterdir()) == [".submitit", "0", "multirun.yaml"]
    run = sweep / "0"
    assert "x 2 processes (DDP, global batch 2)" in (run / "train.log").read_text()
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert last["step"] == 8 * EPOCHS and len(last["ranks"]) == 2  # both ranks' buffers and RNG
    assert (sweep / ".submitit" / job).is_dir()

    # The same training under torchrun, 2 processes: the same weights, bit for bit.
    torchrun = tmp_path / "torchrun"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(ROOT / "train.py"),
            *TRAINING,
            f"schedule.n_epochs={EPOCHS}",
            f"paths.data_dir={data_dir}",
            f"hydra.run.dir={torchrun}",
        ],
        cwd=tmp_path,
        env=command_env(OMP_NUM_THREADS="1"),  # what slurm_ddp's setup gives each task
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert _same_weights(run, torchrun)


def _requeued_then_completed(job: str) -> list:
    """sacct's runs of the job, a requeue's replaced ones included: requeued, then completed."""
    wait_ended([job])
    rows = [r for r in sacct([job], duplicates=True) if not r.is_step]
    states = [r.state for r in rows]
    assert len(states) >= 2 and set(states[:-1]) == {"REQUEUED"} and states[-1] == "COMPLETED"
    return rows


def _check_resumed_run(run: Path, reference_run: Path, signame: str) -> int:
    """Stopped by `signame` after a step, checkpoint, resumed there, same weights, steps once."""
    log = (run / "train.log").read_text()
    # Both ranks log their stop (rank 1 logs warnings, into the same file); rank 0 resumes.
    stops = sorted(
        {int(s) for s in re.findall(rf"stopped by signal {signame} at step (\d+);", log)}
    )
    resumes = [int(s) for s in re.findall(r"resumed from .* at epoch \d+, step (\d+)", log)]
    assert stops and stops == resumes, log[-3000:]
    assert _same_weights(run, reference_run)  # bit-identical to the uninterrupted run
    assert _logged_steps(run) == _logged_steps(reference_run)  # each step logged once
    ids, steps = _wandb_steps(run)
    assert len(ids) == 1 and steps == _logged_steps(reference_run), (ids, steps)
    # An attempt whose W&B service SLURM stopped (SIGTERM) left its run unclosed: set aside, its
    # steps sent again by the next attempt. One that closed it keeps its offline file.
    set_aside = sorted((run / "wandb").glob("unclosed-offline-run-*"))
    assert len(set_aside) == (len(stops) if signame == "SIGTERM" else 0), set_aside
    assert len(offline_runs(run)) + len(set_aside) == len(stops) + 1  # a W&B folder per attempt
    return stops[0]


def test_preempted_job_is_requeued_and_resumes(reference, data_dir: Path, tmp_path: Path):
    """`scontrol requeue` is what a pre-empting scheduler does: SIGTERM to every task, then
    the job back in the queue."""
    sweep = tmp_path / "sweep"
    with _submit("slurm-ddp-preempt", sweep, data_dir) as proc:
        job = _running(sweep)
        scheduler("scontrol", "requeue", job)
        _finish(proc)
    rows = _requeued_then_completed(job)
    print(f"\npre-empted by scontrol requeue:\n{table(rows)}")
    step = _check_resumed_run(sweep / "0", reference[0] / "0", "SIGTERM")
    assert 0 < step < 8 * EPOCHS


def _ranks(job: str) -> list[int]:
    """The job's training processes (submitit's task processes, one per rank) on this node."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
            cmdline = (proc / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        args = cmdline.split(b"\0")
        is_task = b"submitit.core._submit" in args and not args[0].endswith(b"srun")
        if is_task and f"SLURM_JOB_ID={job}".encode() in environ:
            pids.append(int(proc.name))
    return pids


def _stopped(pid: int) -> bool:
    """Whether the process is stopped (SIGSTOP); False once it has gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return any(line.startswith("State:") and "T (stopped)" in line for line in status.splitlines())


def _seconds(duration: str) -> int:
    """SLURM's `[D-]HH:MM:SS` in seconds."""
    days, _, clock = duration.rpartition("-")
    h, m, sec = (int(x) for x in clock.split(":"))
    return int(days or 0) * 86400 + h * 3600 + m * 60 + sec


def test_timed_out_job_is_signalled_requeued_and_resumes(reference, data_dir: Path, tmp_path: Path):
    """SLURM's time-out notice: once the job trains, its time limit is cut so that the notice
    (SIGUSR2, signal_delay_s before the limit) is due and the limit is still >= 35 s away. SLURM
    checks time limits every 30 s, so the notice comes within 30 s, before the limit; the ranks
    are held (SIGSTOP) until SLURM sends it (with a SIGCONT), so that the smoke recipe, not a long
    training, spans the wait. Every rank ends its step, rank 0 saves, submitit requeues the job,
    and the requeued job (given its 10 minutes back) finishes from the checkpoint."""
    sweep = tmp_path / "sweep"
    delay = 100  # > 35 s + 60 s: a whole-minute limit fits between "notice due" and 35 s away
    options = [f"hydra.launcher.signal_delay_s={delay}", "hydra.launcher.max_num_timeout=3"]
    with _submit("slurm-ddp-timeout", sweep, data_dir, *options) as proc:
        job = _running(sweep)
        ranks = wait_until(lambda: len(_ranks(job)) == 2 and _ranks(job), 30, "the 2 ranks")
        for pid in ranks:
            os.kill(pid, signal.SIGSTOP)
        try:
            minutes = math.ceil((_seconds(show_job(job)["RunTime"]) + 35) / 60)
            scheduler("scontrol", "update", f"JobId={job}", f"TimeLimit={minutes}")
            # SLURM sends SIGCONT with the notice: the ranks go on by themselves.
            wait_until(lambda: not any(map(_stopped, ranks)), 60, "SLURM's SIGCONT and SIGUSR2")
        finally:
            for pid in ranks:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
        # submitit requeues from its SIGUSR2 handler; give the next run its time back before it
        # starts (a requeued job waits cred_expire, 10 s on the test cluster, before it starts).
        wait_until(lambda: int(show_job(job).get("Restarts", 0)) >= 1, 120, "the requeue")
        scheduler("scontrol", "update", f"JobId={job}", "TimeLimit=10")
        _finish(proc)
    rows = _requeued_then_completed(job)
    print(f"\ntimed out (SIGUSR2 {delay} s before a {minutes}-minute limit):\n{table(rows)}")
    logs = "".join(p.read_text() for p in (sweep / ".submitit").rglob("*_0_log.*"))
    assert "Caught signal SIGUSR2" in logs and "this job is timed-out" in logs
    assert re.search(rf"Requeued job {re.escape(job)} \(\d+ remaining timeouts\)", logs)
    step = _check_resumed_run(sweep / "0", reference[0] / "0", "SIGUSR2")
    assert 0 < step < 8 * EPOCHS
