"""What the SLURM tests ask the scheduler (sacct, squeue, scontrol) and how they start the project's
commands against it: each test names its jobs, so `sacct` tells the scenarios apart."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from ..conftest import ROOT

# The launcher's resources for the test node (2 CPUs, no GPU): the configs ask for a GPU node.
NODE = [
    "hydra.launcher.partition=debug",
    "hydra.launcher.gpus_per_node=null",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=2",
    "hydra.launcher.timeout_min=10",
]
SACCT_FIELDS = "JobID,JobName,State,ExitCode,Start,End,Elapsed,NTasks"


@dataclass(frozen=True)
class Row:
    """One line of `sacct`: a job (`12`, `12_0`) or one of its steps (`12.batch`, `12.0`)."""

    job_id: str
    name: str
    state: str
    exit_code: str
    start: str
    end: str
    elapsed: str
    ntasks: str  # a step's tasks ("" for the job itself)

    @property
    def is_step(self) -> bool:
        return "." in self.job_id


def scheduler(*args: str, timeout: float = 60) -> str:
    """A SLURM command's output; a failure raises with its stderr."""
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(args)}: exit {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def sacct(job_ids: Iterable[str], duplicates: bool = False) -> list[Row]:
    """These jobs (`12`, `12_0`) and their steps; with `duplicates`, the runs a requeue replaced."""
    flags = ["-D"] if duplicates else []
    jobs = ",".join(sorted(job_ids))
    out = scheduler("sacct", "-n", "-P", *flags, f"--jobs={jobs}", f"--format={SACCT_FIELDS}")
    return [Row(*line.split("|")) for line in out.splitlines() if line]


def squeue_states(name: str) -> dict[str, str]:
    """{job id: state} of the jobs named `name` that SLURM has queued or running now."""
    out = scheduler("squeue", "-h", "-r", f"--name={name}", "-o", "%i %T")  # -r: array tasks
    return dict(line.split() for line in out.splitlines() if line.strip())


# sacct states of a job not yet ended (its accounting not yet written).
ACTIVE = frozenset({"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "SUSPENDED"})


def wait_ended(job_ids: Iterable[str], timeout: float = 120) -> None:
    """Until the jobs have left squeue and sacct has recorded how each ended. The launcher returns
    once submitit has read every task's result, while the job's processes still shut down (W&B's
    service, the process group): sacct says COMPLETED only seconds later, and can still say
    RUNNING just after squeue has dropped the job (the accounting is written afterwards)."""
    job_ids = sorted(job_ids)
    jobs = ",".join(job_ids)

    def gone() -> bool:
        return not scheduler("squeue", "-h", "-r", f"--jobs={jobs}", "-o", "%i").strip()

    def recorded() -> bool:
        rows = [r for r in sacct(job_ids) if not r.is_step]
        return bool(rows) and not any(r.state in ACTIVE for r in rows)

    wait_until(gone, timeout, f"jobs {jobs} to end", every=0.5)
    wait_until(recorded, timeout, f"sacct to record how jobs {jobs} ended", every=0.5)


def show_job(job_id: str) -> dict[str, str]:
    """`scontrol show job`'s KEY=VALUE fields."""
    fields = {}
    for word in scheduler("scontrol", "show", "job", job_id).split():
        key, sep, value = word.partition("=")
        if sep:
            fields[key] = value
    return fields


def job_id_of(run_dir: Path) -> str:
    """The SLURM job id recorded in a run directory (Hydra's `hydra.job.id`, set by submitit)."""
    return str(OmegaConf.load(run_dir / ".hydra" / "hydra.yaml").hydra.job.id)


def wait_until(
    check: Callable[[], object], timeout: float, what: str, every: float = 0.2
) -> object:
    """`check()`'s first truthy value, polled; an AssertionError naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"gave up after {timeout:.0f} s waiting for {what}")


def metric_lines(run_dir: Path) -> int:
    path = run_dir / "metrics.jsonl"
    return len(path.read_text().splitlines()) if path.is_file() else 0


def command_env(**extra: str) -> dict[str, str]:
    """The environment of the commands the tests start. sbatch passes it on to the jobs, so the
    jobs import this checkout's code (PYTHONPATH) and find the cluster (SLURM_CONF). No
    OMP_NUM_THREADS: the launcher config sets the jobs' threads, and the tests check it did."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    path = [str(ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env.update(PYTHONPATH=os.pathsep.join(path), PYTHONWARNINGS="ignore", HYDRA_FULL_ERROR="0")
    env.update(extra)
    return env


@contextlib.contextmanager
def started(script: str, args: list[str], cwd: Path, jobs: str) -> Iterator[subprocess.Popen]:
    """`python <script> args...` from this checkout, its output kept for the assertion messages.
    Whatever the test does, nothing is left behind: the command is killed and its SLURM jobs
    (named `jobs`) cancelled if it still runs at the end."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / script), *args],
        cwd=cwd,
        env=command_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
            subprocess.run(["scancel", f"--name={jobs}"], check=False, timeout=60)


def table(rows: list[Row]) -> str:
    """sacct's rows as the tests print them (pytest -s or -rP shows them)."""
    lines = [f"{'JobID':<14}{'JobName':<22}{'State':<12}{'Exit':<6}{'Elapsed':<10}{'Start'}"]
    lines += [
        f"{r.job_id:<14}{r.name:<22}{r.state:<12}{r.exit_code:<6}{r.elapsed:<10}{r.start}"
        for r in rows
    ]
    return "\n".join(lines)
