"""Run a named grid from `experiments/sweeps/` as one Hydra multirun, then compare its jobs.

`python sweep.py NAME [overrides...]` runs `train.py -m +experiment/sweeps=NAME [overrides...]`
(any launcher or sweeper: basic, joblib, submitit, Optuna) into `multirun/NAME/<time>/`, then reads
each job's `summary.json`, `metrics.jsonl` and `.hydra/` back from disk and writes the comparison
next to them: a ranked table (printed, `comparison.csv`, `comparison.md`) and a plot of one metric's
curve per job (`curves_<metric>.png`). A job that failed is listed as failed; the others still
count. Everything is read from disk, so `--collect DIR` redoes the comparison of any multirun.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shlex
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from cyclegan.evaluation.ranking import lower_is_better
from cyclegan.plugins import experiment_settings, missing_plugin_message
from cyclegan.run_identity import sweep_group

EXIT_JOB_FAILED = 1
EXIT_USAGE = 2
DEFAULT_PLOT = "train/loss_cycle"
# Columns shown besides the ranked metric, when any job has them.
COLUMNS = (
    "eval/psnr_AB",
    "eval/ssim_AB",
    "eval/fid_AB",
    "eval/kid_AB",
    "final/train/loss_G",
    "final/train/loss_cycle",
    "final/train/loss_D",
    "time/train_s",
)


class SweepError(RuntimeError):
    """A sweep that cannot start or be compared; the message says what to do."""


@dataclass
class Job:
    """One job of a multirun, as its directory tells it."""

    name: str  # the job's directory name: Hydra's job number
    path: Path
    overrides: list[str]
    config: dict[str, Any]  # .hydra/config.yaml, unresolved
    summary: dict[str, Any] | None  # None: the job did not finish
    error: str = ""
    label: str = ""  # the overrides that differ between the sweep's jobs
    rank: int | None = None

    @property
    def failed(self) -> bool:
        return self.summary is None


# ---------------------------------------------------------------------------- reading a sweep


def _last_error(job_dir: Path) -> str:
    """The last ERROR line of the job's log (run.py logs input errors there), without its prefix."""
    for log_file in sorted(job_dir.glob("*.log")):
        lines = log_file.read_text(errors="replace").splitlines()
        errors = [line for line in lines if "[ERROR]" in line]
        if errors:
            return errors[-1].split("] - ", 1)[-1].strip()
    return ""


def load_job(job_dir: Path) -> Job:
    overrides = [str(o) for o in OmegaConf.load(job_dir / ".hydra" / "overrides.yaml")]
    config_file = job_dir / ".hydra" / "config.yaml"
    config = OmegaConf.to_container(OmegaConf.load(config_file)) if config_file.is_file() else {}
    summary_file = job_dir / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else None
    return Job(
        name=job_dir.name,
        path=job_dir,
        overrides=overrides,
        config=config,  # type: ignore[arg-type]
        summary=summary,
        error="" if summary is not None else _last_error(job_dir),
    )


def find_jobs(sweep_dir: Path) -> list[Job]:
    """Every job directory (one with a `.hydra/overrides.yaml`), in job-number order, labelled."""
    dirs = [p.parent.parent for p in sweep_dir.glob("*/.hydra/overrides.yaml")]
    dirs.sort(key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name))
    jobs = [load_job(d) for d in dirs]
    label_jobs(jobs)
    return jobs


def label_jobs(jobs: list[Job]) -> None:
    """Label each job by the overrides that differ between jobs (all of them for a single job)."""
    parsed = [dict(o.partition("=")[::2] for o in job.overrides) for job in jobs]
    keys = {k for p in parsed for k in p}
    varying = {k for k in keys if len({p.get(k) for p in parsed}) > 1 or len(jobs) == 1}
    for job, p in zip(jobs, parsed, strict=True):
        job.label = " ".join(f"{k}={v}" for k, v in p.items() if k in varying)


# ---------------------------------------------------------------------------- ranking


def ranking_rule(jobs: list[Job], metric: str | None, mode: str | None) -> tuple[str, str]:
    """The metric to rank by and its direction: given, else the jobs' optimized_metric/_mode."""
    configs = [j.config for j in jobs]
    metric = metric or next(
        (c["optimized_metric"] for c in configs if "optimized_metric" in c), "eval/psnr_AB"
    )
    if mode is None:
        same_metric = [c for c in configs if c.get("optimized_metric") == metric]
        configured = next((c["optimized_mode"] for c in same_metric if "optimized_mode" in c), None)
        mode = configured or ("min" if lower_is_better(metric) else "max")
    return metric, mode


def _value(job: Job, key: str) -> float | None:
    value = (job.summary or {}).get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


def rank_jobs(jobs: list[Job], metric: str, mode: str) -> list[Job]:
    """Finished jobs with the metric, best first; then finished ones without it; then failed."""
    scored = [j for j in jobs if _value(j, metric) is not None]
    scored.sort(key=lambda j: _value(j, metric) * (-1 if mode == "max" else 1))  # type: ignore[operator]
    for rank, job in enumerate(scored, start=1):
        job.rank = rank
    unscored = [j for j in jobs if not j.failed and j not in scored]
    return scored + unscored + [j for j in jobs if j.failed]


# ---------------------------------------------------------------------------- the comparison


def comparison(jobs: list[Job], metric: str, mode: str) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of the ranked table (raw values; formatting is the writers' job)."""
    columns = [c for c in COLUMNS if c != metric and any(_value(j, c) is not None for j in jobs)]
    header = ["rank", "job", "overrides", f"{metric} ({mode})", *columns, "status"]
    rows = []
    for job in jobs:
        status = "failed" + (f": {job.error}" if job.error else "") if job.failed else "ok"
        rows.append(
            [
                job.rank if job.rank is not None else "-",
                job.name,
                job.label,
                _value(job, metric),
                *(_value(job, c) for c in columns),
                status,
            ]
        )
    return header, rows


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_table(header: list[str], rows: list[list[Any]]) -> str:
    cells = [header, *([_cell(v) for v in row] for row in rows)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_markdown(header: list[str], rows: list[list[Any]]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    body = [line([_cell(v) for v in row]) for row in rows]
    return "\n".join([line(header), line(["---"] * len(header)), *body]) + "\n"


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows([["" if v is None else v for v in row] for row in rows])


def read_curve(job: Job, key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of one metric from the job's metrics.jsonl (empty if it has none)."""
    path = job.path / "metrics.jsonl"
    steps: list[int] = []
    values: list[float] = []
    if path.is_file():
        for line in path.read_text().splitlines():
            row = json.loads(line) if line.strip() else {}
            if isinstance(row.get(key), int | float):
                steps.append(row["step"])
                values.append(float(row[key]))
    return steps, values


def plot_curves(jobs: list[Job], key: str, path: Path) -> Path | None:
    """One line per job of `key` against the training step; None if no job logged it."""
    curves = [(job, *read_curve(job, key)) for job in jobs]
    curves = [c for c in curves if c[1]]
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for job, steps, values in curves:
        style = "--" if job.failed else "-"
        marker = "o" if len(steps) == 1 else None
        ax.plot(steps, values, style, marker=marker, label=f"{job.name}: {job.label}"[:60])
    ax.set_xlabel("step")
    ax.set_ylabel(key)
    ax.set_title(f"{key} per job ({path.parent.parent.name}/{path.parent.name})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def wandb_summary(jobs: list[Job], sweep_dir: Path) -> list[str]:
    """Lines naming the W&B group of the sweep's runs and how to upload the offline ones."""
    offline = sorted(sweep_dir.glob("*/wandb/offline-run-*"))
    online = sorted(sweep_dir.glob("*/wandb/run-*"))
    if not offline and not online:
        return []
    logger = next((j.config.get("logger") or {} for j in jobs), {})
    group = logger.get("group") or sweep_group(sweep_dir)
    lines = [
        f"W&B: {len(offline) + len(online)} runs in group '{group}' "
        f"(project '{logger.get('project', 'cyclegan')}')"
    ]
    if offline:
        lines.append(f"upload the offline runs with: wandb sync {sweep_dir}/*/wandb/offline-run-*")
    return lines


def report(sweep_dir: Path, metric: str | None, mode: str | None, plot: str) -> int:
    """Compare a finished multirun's jobs: print and write the table, plot; the exit status."""
    jobs = find_jobs(sweep_dir)
    if not jobs:
        raise SweepError(f"no jobs in {sweep_dir} (no */.hydra/overrides.yaml); check the path")
    metric, mode = ranking_rule(jobs, metric, mode)
    ranked = rank_jobs(jobs, metric, mode)
    header, rows = comparison(ranked, metric, mode)
    write_csv(sweep_dir / "comparison.csv", header, rows)
    (sweep_dir / "comparison.md").write_text(format_markdown(header, rows))
    failed = sum(j.failed for j in jobs)
    print(f"\n{len(jobs)} jobs in {sweep_dir}, ranked by {metric} ({mode}); {failed} failed\n")
    print(format_table(header, rows))
    print(f"\nwritten: {sweep_dir / 'comparison.csv'}, {sweep_dir / 'comparison.md'}")
    try:
        png = plot_curves(ranked, plot, sweep_dir / f"curves_{plot.replace('/', '_')}.png")
    except ImportError:
        print("no plot: matplotlib is not installed (pip install matplotlib)")
    else:
        print(f"plot: {png}" if png else f"no plot: no job logged {plot!r} in metrics.jsonl")
    optuna = sweep_dir / "optimization_results.yaml"
    if optuna.is_file():
        best = OmegaConf.load(optuna)
        print(f"Optuna best: {best.get('best_value')} with {dict(best.get('best_params', {}))}")
    for line in wandb_summary(jobs, sweep_dir):
        print(line)
    return EXIT_JOB_FAILED if failed else 0


# ---------------------------------------------------------------------------- grids


def grid_path(experiments_dir: Path, name: str) -> Path:
    return experiments_dir / "sweeps" / f"{name}.yaml"


def grid_names(experiments_dir: Path) -> list[str]:
    return sorted(p.stem for p in (experiments_dir / "sweeps").glob("*.yaml"))


def describe_grid(path: Path) -> str:
    """`N runs: a=1,2 x b=3,4` for a grid, `Optuna: N trials over a, b` for a search."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    choices, sweeper = experiment_settings(path)
    params = dict(sweeper.get("params") or {})
    if ("hydra/sweeper", "optuna") in choices:
        return f"Optuna: {sweeper.get('n_trials')} trials over {', '.join(params)}"
    parser = OverridesParser.create()
    sizes = [
        len(list(parser.parse_override(f"{k}={v}").sweep_string_iterator()))
        for k, v in params.items()
    ]
    return f"{math.prod(sizes)} runs: " + " x ".join(f"{k}={v}" for k, v in params.items())


def list_grids(experiments_dir: Path) -> None:
    names = grid_names(experiments_dir)
    width = max((len(n) for n in names), default=0)
    for name in names:
        print(f"{name.ljust(width)}  {describe_grid(grid_path(experiments_dir, name))}")


def run_grid(train_script: Path, name: str, overrides: list[str], sweep_dir: Path) -> int:
    """Run the grid as one multirun; its exit status (non-zero when any job failed)."""
    cmd = [sys.executable, str(train_script), "-m", f"+experiment/sweeps={name}", *overrides]
    if not any(o.startswith("hydra.sweep.dir=") for o in overrides):
        cmd.append(f"hydra.sweep.dir={sweep_dir}")
    print(f"running: {shlex.join(cmd)}", flush=True)
    return subprocess.run(cmd, check=False).returncode


# ---------------------------------------------------------------------------- command line


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="sweep.py",
        description="Run a named grid from experiments/sweeps/ and rank its runs.",
        epilog="example: python sweep.py lambda_grid hydra/launcher=parallel +experiment=cpu_smoke",
    )
    parser.add_argument("name", nargs="?", help="grid name (see --list)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every job")
    parser.add_argument("--list", action="store_true", help="list the grids and exit")
    parser.add_argument(
        "--collect", type=Path, metavar="DIR", help="only compare an existing multirun"
    )
    parser.add_argument("--metric", help="rank by this summary key (default: optimized_metric)")
    parser.add_argument("--mode", choices=("max", "min"), help="higher or lower is better")
    parser.add_argument(
        "--plot", default=DEFAULT_PLOT, metavar="KEY", help="metric to plot per job"
    )
    return parser.parse_intermixed_args(argv)


def main(argv: list[str], root: Path) -> int:
    """sweep.py's command line; `root` holds train.py and experiments/. Returns the exit status."""
    args = parse_args(argv)
    experiments_dir = root / "experiments"
    try:
        if args.list:
            list_grids(experiments_dir)
            return 0
        if args.collect is not None:
            return report(args.collect, args.metric, args.mode, args.plot)
        if args.name is None:
            raise SweepError(
                "give a grid name (python sweep.py --list shows them) or --collect DIR"
            )
        if not grid_path(experiments_dir, args.name).is_file():
            known = ", ".join(grid_names(experiments_dir))
            raise SweepError(
                f"no grid '{args.name}' in {experiments_dir / 'sweeps'}; use one of: {known}"
            )
        overrides = [f"+experiment/sweeps={args.name}", *args.overrides]
        message = missing_plugin_message(overrides, experiments_dir)
        if message is not None:
            raise SweepError(message)
        given = [o.partition("=")[2] for o in args.overrides if o.startswith("hydra.sweep.dir=")]
        stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        sweep_dir = Path(given[-1]) if given else Path("multirun") / args.name / stamp
        status = run_grid(root / "train.py", args.name, args.overrides, sweep_dir)
        if not sweep_dir.is_dir() or not any(sweep_dir.glob("*/.hydra")):
            raise SweepError(
                f"the multirun started no job (exit status {status}); see its output above"
            )
        return max(
            report(sweep_dir, args.metric, args.mode, args.plot), EXIT_JOB_FAILED if status else 0
        )
    except SweepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
