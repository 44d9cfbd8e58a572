"""The jobs of a multirun as their directories tell them, grouped into cells and ranked.

A job is one run of the sweep (`<sweep dir>/<job number>/`: `.hydra/`, `summary.json`, logs); a
cell is the jobs with the same overrides but the seed. Everything is read from disk, so any
finished (or half-finished) multirun can be compared again.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from cyclegan.config.run_identity import sweep_group
from cyclegan.evaluation.ranking import lower_is_better
from cyclegan.sweeps.aggregate import Stat, cannot_tell_apart, summarize

SEED_KEY = "seed"


class SweepError(RuntimeError):
    """A sweep that cannot start or be compared; the message says what to do."""


@dataclass
class Job:
    """One job of a multirun, as its directory tells it."""

    name: str  # the job's directory name: Hydra's job number (prefixed by the sweep when collected)
    path: Path
    overrides: list[str]
    config: dict[str, Any]  # .hydra/config.yaml, unresolved
    summary: dict[str, Any] | None  # None: the job did not finish
    error: str = ""
    label: str = ""  # the overrides that differ between the sweep's jobs, the seed included
    cell: str = ""  # the same without the seed: jobs with equal `cell` are seeds of one setting
    rank: int | None = None
    slurm_id: str = ""  # SLURM's job id (`12_3`) when the job ran on a SLURM cluster

    @property
    def failed(self) -> bool:
        return self.summary is None

    def failure(self) -> str:
        """`failed (SLURM job 12_3): <error>`: what a table says about a failed job."""
        where = f" (SLURM job {self.slurm_id})" if self.slurm_id else ""
        return f"failed{where}" + (f": {self.error}" if self.error else "")

    @property
    def seed(self) -> int | None:
        """The seed the job ran with: its override, else its config's."""
        given = dict(o.lstrip("+").partition("=")[::2] for o in self.overrides).get(SEED_KEY)
        value = given if given is not None else self.config.get(SEED_KEY)
        try:
            return int(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None


@dataclass
class Cell:
    """The jobs of one grid cell: the same overrides, different seeds."""

    label: str
    jobs: list[Job]
    stats: dict[str, Stat | None] = field(default_factory=dict)  # per metric, finished jobs only
    rank: int | None = None
    vs_best: str = ""  # "best", "yes" (cannot be told apart from the best), "no", "?" (n < 2)

    @property
    def failed(self) -> bool:
        return all(job.failed for job in self.jobs)

    @property
    def seeds(self) -> list[int | None]:
        return [job.seed for job in self.jobs if not job.failed]

    def status(self) -> str:
        failed = [job for job in self.jobs if job.failed]
        if not failed:
            return "ok"
        first = failed[0]
        if len(failed) == len(self.jobs):
            return first.failure()
        seeds = ",".join(str(job.seed) for job in failed)
        error = first.failure().removeprefix("failed")
        return f"ok; {len(failed)} of {len(self.jobs)} failed (seed {seeds}{error})"


# ---------------------------------------------------------------------------- reading a sweep


def _last_error(job_dir: Path) -> str:
    """The last ERROR line of the job's log (run.py logs input errors there), without its prefix."""
    for log_file in sorted(job_dir.glob("*.log")):
        lines = log_file.read_text(errors="replace").splitlines()
        errors = [line for line in lines if "[ERROR]" in line]
        if errors:
            return errors[-1].split("] - ", 1)[-1].strip()
    return ""


def slurm_job_id(job_dir: Path) -> str:
    """SLURM's id of the job that ran in `job_dir` (submitit sets Hydra's `hydra.job.id` to it),
    "" for other launchers."""
    hydra_file = job_dir / ".hydra" / "hydra.yaml"
    if not hydra_file.is_file():
        return ""
    hydra = OmegaConf.load(hydra_file).hydra
    launcher = str(OmegaConf.select(hydra, "launcher._target_", default=""))
    return str(hydra.job.get("id", "")) if launcher.endswith(".SlurmLauncher") else ""


def _scheduler_error(job_dir: Path, slurm_id: str) -> str:
    """The last error line of the job's SLURM log (`.submitit/<id>/<id>_0_log.err`): where SLURM
    writes why it ended a job (time limit, memory) and Python a crash's last line."""
    for log_file in sorted(job_dir.parent.glob(f".submitit/{slurm_id}/*_0_log.err")):
        lines = log_file.read_text(errors="replace").splitlines()
        errors = [line for line in lines if "error" in line.lower() or "CANCELLED" in line]
        if errors:
            return errors[-1].strip()
    return ""


def load_job(job_dir: Path) -> Job:
    overrides = [str(o) for o in OmegaConf.load(job_dir / ".hydra" / "overrides.yaml")]
    config_file = job_dir / ".hydra" / "config.yaml"
    config = OmegaConf.to_container(OmegaConf.load(config_file)) if config_file.is_file() else {}
    summary_file = job_dir / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else None
    slurm_id = slurm_job_id(job_dir)
    error = ""
    if summary is None:
        error = _last_error(job_dir) or (slurm_id and _scheduler_error(job_dir, slurm_id))
    return Job(
        name=job_dir.name,
        path=job_dir,
        overrides=overrides,
        config=config,  # type: ignore[arg-type]
        summary=summary,
        error=error,
        slurm_id=slurm_id,
    )


def find_jobs(sweep_dir: Path) -> list[Job]:
    """Every job directory (one with a `.hydra/overrides.yaml`), in job-number order, labelled."""
    dirs = [p.parent.parent for p in sweep_dir.glob("*/.hydra/overrides.yaml")]
    dirs.sort(key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name))
    jobs = [load_job(d) for d in dirs]
    label_jobs(jobs)
    return jobs


def is_seed_key(key: str) -> bool:
    return key.lstrip("+~") == SEED_KEY


def label_jobs(jobs: list[Job]) -> None:
    """Label each job by the overrides that differ between jobs (all of them for a single job),
    and its cell by the same without the seed (all the non-seed overrides when only the seed
    varies, so a one-cell sweep still says what it ran). Keys are written in one order for all
    jobs (first seen first), so the same setting is one cell however each sweep ordered it."""
    parsed = [dict(o.partition("=")[::2] for o in job.overrides) for job in jobs]
    keys = list(dict.fromkeys(k for p in parsed for k in p))
    varying = {k for k in keys if len({p.get(k) for p in parsed}) > 1 or len(jobs) == 1}
    cell_keys = {k for k in varying if not is_seed_key(k)} or {
        k for k in keys if not is_seed_key(k)
    }
    for job, p in zip(jobs, parsed, strict=True):
        job.label = " ".join(f"{k}={p[k]}" for k in keys if k in p and k in varying)
        job.cell = " ".join(f"{k}={p[k]}" for k in keys if k in p and k in cell_keys)


def collect_jobs(sweep_dirs: list[Path]) -> list[Job]:
    """The jobs of one or more multiruns, labelled together; with several, each job is named
    `<sweep group>/<job>` (the W&B group: the grid and its start) so the names stay unique."""
    jobs: list[Job] = []
    for sweep_dir in sweep_dirs:
        found = find_jobs(sweep_dir)
        if not found:
            raise SweepError(f"no jobs in {sweep_dir} (no */.hydra/overrides.yaml); check the path")
        if len(sweep_dirs) > 1:
            for job in found:
                job.name = f"{sweep_group(sweep_dir)}/{job.name}"
        jobs += found
    label_jobs(jobs)
    return jobs


# ---------------------------------------------------------------------------- ranking


def configured(job: Job, key: str) -> str | None:
    """The job's `optimized_metric`/`optimized_mode`: from its summary.json (the resolved value the
    run used), else from its .hydra/config.yaml, resolved where it is an interpolation
    (`${default_metric:${dataset.paired_test}}`); None when neither says."""
    if job.summary and isinstance(job.summary.get(key), str):
        return job.summary[key]
    value = job.config.get(key)
    if not isinstance(value, str) or "${" not in value:
        return value
    from cyclegan.config.resolvers import register_resolvers

    register_resolvers()
    try:
        return str(OmegaConf.select(OmegaConf.create(job.config), key))
    except Exception:  # e.g. ${hydra:...} outside Hydra: say nothing rather than guess
        return None


def ranking_rule(jobs: list[Job], metric: str | None, mode: str | None) -> tuple[str, str]:
    """The metric to rank by and its direction: given, else the jobs' optimized_metric/_mode,
    else the metric's own direction."""
    metric = metric or next(
        (m for m in (configured(j, "optimized_metric") for j in jobs) if m), "eval/psnr_AB"
    )
    if mode is None:
        same = [j for j in jobs if configured(j, "optimized_metric") == metric]
        mode = next((m for m in (configured(j, "optimized_mode") for j in same) if m), None)
        mode = mode or ("min" if lower_is_better(metric) else "max")
    return metric, mode


def metric_value(job: Job, key: str) -> float | None:
    value = (job.summary or {}).get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


def _sign(mode: str) -> float:
    return -1.0 if mode == "max" else 1.0


def rank_jobs(jobs: list[Job], metric: str, mode: str) -> list[Job]:
    """Finished jobs with the metric, best first; then finished ones without it; then failed."""
    scored = [j for j in jobs if metric_value(j, metric) is not None]
    scored.sort(key=lambda j: metric_value(j, metric) * _sign(mode))  # type: ignore[operator]
    for rank, job in enumerate(scored, start=1):
        job.rank = rank
    unscored = [j for j in jobs if not j.failed and j not in scored]
    return scored + unscored + [j for j in jobs if j.failed]


def group_cells(jobs: list[Job], keys: list[str]) -> list[Cell]:
    """Jobs grouped by their overrides without the seed (in first-job order), seeds sorted, with
    the mean ± std of each of `keys` over the cell's finished jobs."""
    cells: dict[str, Cell] = {}
    for job in jobs:
        cells.setdefault(job.cell, Cell(label=job.cell, jobs=[])).jobs.append(job)
    for cell in cells.values():
        cell.jobs.sort(key=lambda j: (j.seed is None, j.seed or 0, j.name))
        for key in keys:
            values = [v for v in (metric_value(j, key) for j in cell.jobs) if v is not None]
            cell.stats[key] = summarize(values)
    return list(cells.values())


def rank_cells(cells: list[Cell], metric: str, mode: str) -> list[Cell]:
    """Cells with the metric by mean, best first (then cells without it, then failed ones), each
    marked against the best: "best", "yes" when the two cannot be told apart at their n (mean ± 2
    standard errors overlap), "no" when they can, "?" when either has a single seed."""
    scored = [c for c in cells if c.stats.get(metric) is not None]
    scored.sort(key=lambda c: c.stats[metric].mean * _sign(mode))  # type: ignore[union-attr]
    for rank, cell in enumerate(scored, start=1):
        cell.rank = rank
    if scored:
        best = scored[0].stats[metric]
        scored[0].vs_best = "best"
        for cell in scored[1:]:
            same = cannot_tell_apart(best, cell.stats[metric])  # type: ignore[arg-type]
            cell.vs_best = "?" if same is None else ("yes" if same else "no")
    unscored = [c for c in cells if not c.failed and c not in scored]
    return scored + unscored + [c for c in cells if c.failed]
