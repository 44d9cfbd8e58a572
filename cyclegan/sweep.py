"""Run a named grid from `experiments/sweeps/` as one Hydra multirun, then compare its jobs.

`python sweep.py NAME [overrides...] [--seeds 3]` runs `train.py -m +experiment/sweeps=NAME
[overrides...] [seed=0,1,2]` (any launcher or sweeper: basic, joblib, submitit, Optuna) into
`multirun/NAME/<time>/`, then reads each job's `summary.json`, `metrics.jsonl`, `.hydra/` and
`contact/` back from disk and writes the comparison next to them:

- the table, ranked by cell: a cell is the jobs with the same overrides but the seed, shown as mean ±
  std over its seeds, n and the seeds, and whether it can be told apart from the best cell
  (`cyclegan.aggregate`); printed, in `comparison.md`, and in `comparison.csv` with one row per cell
  and one per job;
- `<metric>_vs_<key>.png`: the ranked metric against a swept value, error bars over seeds, one line
  per setting of the other swept keys;
- `contact_AB.png`: the same fixed test images translated by every cell (its first seed);
- `curves_<key>.png`: one training curve per job.

A job that failed is listed as failed; the others still count. Everything is read from disk, so
`--collect DIR [DIR ...]` redoes the comparison of any multiruns, several sweeps in one table.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from cyclegan.aggregate import Stat, cannot_tell_apart, summarize
from cyclegan.contact import contact_sheet, sheet_rows_for_jobs
from cyclegan.plugins import experiment_settings, missing_plugin_message
from cyclegan.preflight import RankingUnavailable, check_ranking, lower_is_better
from cyclegan.run_identity import claim_stamped_dir, sweep_group

EXIT_JOB_FAILED = 1
EXIT_USAGE = 2
DEFAULT_PLOT = "train/loss_cycle"
SEED_KEY = "seed"
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
QUALITY_PREFIXES = ("eval/",)  # columns aggregated as mean ± std (the rest too, but these matter)


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

    @property
    def failed(self) -> bool:
        return self.summary is None

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
        error = f": {first.error}" if first.error else ""
        if len(failed) == len(self.jobs):
            return f"failed{error}"
        seeds = ",".join(str(job.seed) for job in failed)
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


def _is_seed(key: str) -> bool:
    return key.lstrip("+~") == SEED_KEY


def label_jobs(jobs: list[Job]) -> None:
    """Label each job by the overrides that differ between jobs (all of them for a single job),
    and its cell by the same without the seed (all the non-seed overrides when only the seed
    varies, so a one-cell sweep still says what it ran)."""
    parsed = [dict(o.partition("=")[::2] for o in job.overrides) for job in jobs]
    keys = {k for p in parsed for k in p}
    varying = {k for k in keys if len({p.get(k) for p in parsed}) > 1 or len(jobs) == 1}
    cell_keys = {k for k in varying if not _is_seed(k)} or {k for k in keys if not _is_seed(k)}
    for job, p in zip(jobs, parsed, strict=True):
        job.label = " ".join(f"{k}={v}" for k, v in p.items() if k in varying)
        job.cell = " ".join(f"{k}={v}" for k, v in p.items() if k in cell_keys)


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


def _sign(mode: str) -> float:
    return -1.0 if mode == "max" else 1.0


def rank_jobs(jobs: list[Job], metric: str, mode: str) -> list[Job]:
    """Finished jobs with the metric, best first; then finished ones without it; then failed."""
    scored = [j for j in jobs if _value(j, metric) is not None]
    scored.sort(key=lambda j: _value(j, metric) * _sign(mode))  # type: ignore[operator]
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
            values = [v for v in (_value(j, key) for j in cell.jobs) if v is not None]
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


# ---------------------------------------------------------------------------- the comparison


def shown_columns(jobs: list[Job], metric: str) -> list[str]:
    """COLUMNS that any job has, besides the ranked metric."""
    return [c for c in COLUMNS if c != metric and any(_value(j, c) is not None for j in jobs)]


def _seeds_text(seeds: list[int | None]) -> str:
    return ",".join("-" if s is None else str(s) for s in seeds)


def has_spread(cells: list[Cell], metric: str) -> bool:
    """Whether any cell has the metric from two or more seeds (else "same as best?" says nothing)."""
    return any((c.stats.get(metric) or Stat(0, None, 0)).n > 1 for c in cells)


def cell_table(
    cells: list[Cell], metric: str, mode: str, columns: list[str]
) -> tuple[list[str], list[list[Any]]]:
    """The ranked cell table for people: mean ± std strings, n, seeds, the "same as best?" mark
    (only when some cell has more than one seed: with one seed per cell nothing can be said)."""
    with_marks = has_spread(cells, metric)
    header = ["rank", "overrides", f"{metric} ({mode})"]
    header += ["same as best?"] if with_marks else []
    header += ["n", "seeds", *columns, "jobs", "status"]
    rows = []
    for cell in cells:
        stats = [cell.stats.get(k) for k in (metric, *columns)]
        n = (cell.stats.get(metric) or Stat(0, None, 0)).n
        row: list[Any] = [
            cell.rank if cell.rank is not None else "-",
            cell.label,
            stats[0].format() if stats[0] else None,
        ]
        row += [cell.vs_best or None] if with_marks else []
        row += [n, _seeds_text(cell.seeds), *(s.format() if s else None for s in stats[1:])]
        row += [",".join(j.name for j in cell.jobs), cell.status()]
        rows.append(row)
    return header, rows


def job_status(job: Job) -> str:
    return "failed" + (f": {job.error}" if job.error else "") if job.failed else "ok"


def job_table(
    jobs: list[Job], metric: str, mode: str, columns: list[str]
) -> tuple[list[str], list[list[Any]]]:
    """The ranked job table: each job's own values."""
    header = ["rank", "job", "overrides", "seed", f"{metric} ({mode})", *columns, "status"]
    rows = [
        [
            job.rank if job.rank is not None else "-",
            job.name,
            job.cell,
            job.seed,
            *(_value(job, k) for k in (metric, *columns)),
            job_status(job),
        ]
        for job in jobs
    ]
    return header, rows


def csv_table(
    cells: list[Cell], jobs: list[Job], metric: str, mode: str, columns: list[str]
) -> tuple[list[str], list[list[Any]]]:
    """comparison.csv: one row per cell (kind=cell: mean and std columns), then one per job
    (kind=job: its own values, std empty), raw numbers for spreadsheets and scripts."""
    keys = [metric, *columns]
    header = ["kind", "rank", "overrides", "seeds", "n", "jobs"]
    for i, key in enumerate(keys):
        name = f"{key} ({mode})" if i == 0 else key
        header += [name, f"{key} std"]
    header += ["same as best?", "status"]
    rows: list[list[Any]] = []
    for cell in cells:
        row: list[Any] = [
            "cell",
            cell.rank,
            cell.label,
            _seeds_text(cell.seeds),
            (cell.stats.get(metric) or Stat(0, None, 0)).n,
            " ".join(j.name for j in cell.jobs),
        ]
        for key in keys:
            stat = cell.stats.get(key)
            row += [stat.mean, stat.std] if stat else [None, None]
        rows.append([*row, cell.vs_best or None, cell.status()])
    for job in jobs:
        row = ["job", job.rank, job.cell, job.seed, 0 if job.failed else 1, job.name]
        for key in keys:
            row += [_value(job, key), None]
        rows.append([*row, None, job_status(job)])
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


# ---------------------------------------------------------------------------- pictures


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


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    return plt


def plot_curves(jobs: list[Job], key: str, path: Path) -> Path | None:
    """One line per job of `key` against the training step; None if no job logged it."""
    curves = [(job, *read_curve(job, key)) for job in jobs]
    curves = [c for c in curves if c[1]]
    if not curves:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for job, steps, values in curves:
        style = "--" if job.failed else "-"
        marker = "o" if len(steps) == 1 else None
        ax.plot(steps, values, style, marker=marker, label=f"{job.name}: {job.label}"[:60])
    ax.set_xlabel("step")
    ax.set_ylabel(key)
    ax.set_title(f"{key} per job")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _parse_label(label: str) -> dict[str, str]:
    return dict(part.partition("=")[::2] for part in label.split()) if label else {}


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def choose_x(cells: list[Cell], x_key: str | None) -> str | None:
    """The swept key to plot against: `x_key` if given, else the numeric swept key with the most
    values (the first such in the overrides); None when no key varies between cells."""
    parsed = [_parse_label(c.label) for c in cells]
    keys = list(dict.fromkeys(k for p in parsed for k in p))
    if x_key is not None:
        if x_key not in keys:
            raise SweepError(f"--x {x_key}: not a swept key of these cells; use one of: {keys}")
        return x_key
    numeric = [k for k in keys if all(_number(p.get(k, "")) is not None for p in parsed)]
    candidates = numeric or keys
    if not candidates:
        return None
    return max(candidates, key=lambda k: len({p.get(k) for p in parsed}))


def plot_metric_vs(
    cells: list[Cell], metric: str, mode: str, x_key: str | None, out_dir: Path
) -> Path | None:
    """`metric` (mean over seeds, error bars ± std) against the swept value `x_key`, one line per
    setting of the other swept keys; None when fewer than two cells have the metric."""
    scored = [c for c in cells if c.stats.get(metric) is not None]
    x = choose_x(scored, x_key) if len(scored) > 1 else None
    if x is None:
        return None
    lines: dict[str, list[tuple[str, Stat]]] = {}
    for cell in scored:
        parsed = _parse_label(cell.label)
        rest = " ".join(f"{k}={v}" for k, v in parsed.items() if k != x) or "all"
        lines.setdefault(rest, []).append((parsed.get(x, "-"), cell.stats[metric]))  # type: ignore[arg-type]
    values = {v for points in lines.values() for v, _ in points}
    numeric = all(_number(v) is not None for v in values)
    order = sorted(values, key=lambda v: _number(v) if numeric else v)  # type: ignore[return-value]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    nums = [_number(v) for v in order] if numeric else []
    log_x = numeric and min(nums) > 0 and max(nums) / min(nums) >= 20  # type: ignore[type-var,operator]
    for i, rest in enumerate(sorted(lines)):
        points = sorted(lines[rest], key=lambda p: order.index(p[0]))
        # Lines side by side around each value (a few % of the axis), so error bars do not hide
        # each other; the ticks stay at the swept values.
        dodge = (i - (len(lines) - 1) / 2) * 0.015
        if numeric and log_x:
            xs = [_number(v) * 10 ** (dodge * math.log10(max(nums) / min(nums))) for v, _ in points]  # type: ignore[operator,type-var]
        elif numeric:
            xs = [_number(v) + dodge * (max(nums) - min(nums)) for v, _ in points]  # type: ignore[operator,type-var]
        else:
            xs = [order.index(v) + dodge * len(order) for v, _ in points]
        ys = [s.mean for _, s in points]
        errs = [s.std or 0.0 for _, s in points]
        ax.errorbar(xs, ys, yerr=errs, marker="o", capsize=4, label=rest)
    if log_x:
        ax.set_xscale("log")  # e.g. learning rates
    ax.set_xticks(nums if numeric else range(len(order)), order)
    ax.minorticks_off()
    seeds = sorted({s.n for points in lines.values() for _, s in points})
    ax.set_xlabel(x)
    ax.set_ylabel(f"{metric} ({'higher' if mode == 'max' else 'lower'} is better)")
    ax.set_title(f"{metric}: mean ± std over seeds (n = {','.join(map(str, seeds))} per point)")
    ax.grid(alpha=0.3)
    if len(lines) > 1:  # one line per setting of the other swept keys
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = out_dir / f"{metric.replace('/', '_')}_vs_{x}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_contact_sheet(
    cells: list[Cell], metric: str, out_dir: Path, direction: str = "AB"
) -> tuple[Path | None, list[str]]:
    """One row per cell (its first finished seed), ranked, labelled with the overrides and the
    metric; inputs and (paired data) ground truth on top. Returns the sheet and the labels of the
    cells whose job left no fixed translations."""
    entries, labels = [], {}
    for cell in cells:
        job = next((j for j in cell.jobs if not j.failed), None)
        if job is None:
            continue
        value = _value(job, metric)
        stat = cell.stats.get(metric)
        rank = f"#{cell.rank} " if cell.rank else ""
        seed = f" seed={job.seed}" if job.seed is not None else ""
        text = f"{rank}{cell.label or job.name}{seed}: {metric} {_cell(value)}"
        if stat is not None and stat.n > 1:
            text += f" (cell {stat.format()}, n={stat.n})"
        entries.append((text, job.path))
        labels[text] = cell.label or job.name
    rows, missing = sheet_rows_for_jobs(entries, direction)
    missing = [labels[text] for text in missing]
    if not rows:
        return None, missing
    return contact_sheet(rows, out_dir / f"contact_{direction}.png"), missing


def wandb_summary(jobs: list[Job], sweep_dirs: list[Path]) -> list[str]:
    """Lines naming the W&B group of each sweep's runs and how to upload the offline ones."""
    lines = []
    for sweep_dir in sweep_dirs:
        offline = sorted(sweep_dir.glob("*/wandb/offline-run-*"))
        online = sorted(sweep_dir.glob("*/wandb/run-*"))
        if not offline and not online:
            continue
        logger = next((j.config.get("logger") or {} for j in jobs), {})
        group = logger.get("group") or sweep_group(sweep_dir)
        lines.append(
            f"W&B: {len(offline) + len(online)} runs in group '{group}' "
            f"(project '{logger.get('project', 'cyclegan')}')"
        )
        if offline:
            lines.append(
                f"upload the offline runs with: wandb sync {sweep_dir}/*/wandb/offline-run-*"
            )
    return lines


def _missing_metric_line(jobs: list[Job], metric: str) -> str:
    keys = sorted({k for j in jobs for k in (j.summary or {}) if k.startswith(("eval/", "best/"))})
    known = ", ".join(keys) or "none"
    return (
        f"no job has {metric} in its summary.json, so nothing is ranked; evaluated keys: {known}; "
        "rank by one of them with --metric KEY"
    )


def report(
    sweep_dirs: Path | list[Path],
    metric: str | None,
    mode: str | None,
    plot: str,
    out_dir: Path | None = None,
    x_key: str | None = None,
) -> int:
    """Compare finished multiruns' jobs: print and write the tables and pictures; the exit status
    (1 when a job failed). Writes into `out_dir`, by default the sweep directory (one sweep)."""
    dirs = [sweep_dirs] if isinstance(sweep_dirs, Path) else list(sweep_dirs)
    if not dirs:
        raise SweepError("no sweep directory given")
    if out_dir is None:
        if len(dirs) > 1:
            raise SweepError(
                "comparing several sweeps: say where the comparison goes with --out DIR"
            )
        out_dir = dirs[0]
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = collect_jobs(dirs)
    metric, mode = ranking_rule(jobs, metric, mode)
    columns = shown_columns(jobs, metric)
    ranked_jobs = rank_jobs(jobs, metric, mode)
    cells = rank_cells(group_cells(jobs, [metric, *columns]), metric, mode)

    header, rows = cell_table(cells, metric, mode, columns)
    csv_header, csv_rows = csv_table(cells, ranked_jobs, metric, mode, columns)
    write_csv(out_dir / "comparison.csv", csv_header, csv_rows)
    markdown = "## Cells\n\n" + format_markdown(header, rows)
    markdown += "\n## Jobs\n\n" + format_markdown(*job_table(ranked_jobs, metric, mode, columns))
    (out_dir / "comparison.md").write_text(markdown)

    failed = sum(j.failed for j in jobs)
    where = dirs[0] if len(dirs) == 1 else f"{len(dirs)} sweeps"
    print(
        f"\n{len(jobs)} jobs in {where} ({len(cells)} cells), ranked by {metric} ({mode}); "
        f"{failed} failed\n"
    )
    print(format_table(header, rows))
    if has_spread(cells, metric):
        print(
            "\nsame as best?: yes = cannot be told apart from the best at this n (mean ± 2 "
            "standard errors overlap), no = worse beyond that"
            + (
                "; ? = one seed, no spread to judge by"
                if any(c.vs_best == "?" for c in cells)
                else ""
            )
        )
    if not any(c.rank for c in cells):
        print("\n" + _missing_metric_line(jobs, metric))
    print(
        f"\nwritten: {out_dir / 'comparison.csv'} (a row per cell and per job), {out_dir / 'comparison.md'}"
    )
    _pictures(cells, ranked_jobs, metric, mode, plot, out_dir, x_key)
    optuna = [d / "optimization_results.yaml" for d in dirs]
    for path in (p for p in optuna if p.is_file()):
        best = OmegaConf.load(path)
        print(f"Optuna best: {best.get('best_value')} with {dict(best.get('best_params', {}))}")
    for line in wandb_summary(jobs, dirs):
        print(line)
    return EXIT_JOB_FAILED if failed else 0


def _pictures(
    cells: list[Cell],
    jobs: list[Job],
    metric: str,
    mode: str,
    plot: str,
    out_dir: Path,
    x_key: str | None,
) -> None:
    """The plots and the contact sheet, each named as written or said why not."""
    try:
        png = plot_metric_vs(cells, metric, mode, x_key, out_dir)
        print(f"plot: {png}" if png else f"no {metric} plot: fewer than two cells have it")
        png = plot_curves(jobs, plot, out_dir / f"curves_{plot.replace('/', '_')}.png")
        print(f"plot: {png}" if png else f"no curves: no job logged {plot!r} in metrics.jsonl")
    except ImportError:
        print("no plots: matplotlib is not installed (pip install matplotlib)")
    sheet, missing = write_contact_sheet(cells, metric, out_dir)
    if sheet is not None:
        print(f"contact sheet: {sheet}")
    elif missing:
        print(
            "no contact sheet: no job left fixed translations (<job>/contact/, written at the "
            "end of training)"
        )
        return
    if missing:
        print(
            f"no fixed translations (contact/contact.json) from {len(missing)} cell(s): "
            + "; ".join(missing[:3])
            + (" ..." if len(missing) > 3 else "")
        )


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


# ---------------------------------------------------------------------------- seeds


def parse_seeds(text: str) -> list[int]:
    """`--seeds 3` -> [0, 1, 2]; `--seeds 0,4,7` -> [0, 4, 7]. A count must be >= 1 and a list's
    seeds distinct non-negative integers; anything else is a SweepError naming the fix."""
    fix = "give a count >= 1 (--seeds 3 runs seeds 0,1,2) or a list of seeds (--seeds 0,4,7)"
    parts = [p.strip() for p in text.split(",")]
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        raise SweepError(f"--seeds {text}: not a number or a comma-separated list; {fix}") from None
    if len(numbers) == 1 and "," not in text:
        if numbers[0] < 1:
            raise SweepError(f"--seeds {text}: no seeds to run; {fix}")
        return list(range(numbers[0]))
    if any(n < 0 for n in numbers) or len(set(numbers)) != len(numbers):
        raise SweepError(f"--seeds {text}: seeds must be distinct and >= 0; {fix}")
    return numbers


def seed_override(seeds: list[int], grid: Path, overrides: list[str]) -> str:
    """The `seed=...` sweep override for `--seeds`, refused where the seed is already swept or the
    grid is an Optuna search (it would become a searched parameter, not a repetition)."""
    choices, sweeper = experiment_settings(grid)
    if ("hydra/sweeper", "optuna") in choices:
        raise SweepError(
            f"--seeds: {grid.stem} is an Optuna search, which draws its own trials; "
            "use --seeds with a grid (python sweep.py --list)"
        )
    given = [o for o in overrides if _is_seed(o.partition("=")[0])]
    if given or any(_is_seed(k) for k in sweeper.get("params") or {}):
        where = given[0] if given else f"the grid {grid.name}"
        raise SweepError(f"--seeds and {where} both set the seed; keep one")
    return f"{SEED_KEY}={','.join(map(str, seeds))}"


# ---------------------------------------------------------------------------- command line


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="sweep.py",
        description="Run a named grid from experiments/sweeps/ and rank its runs.",
        epilog="example: python sweep.py lambda_grid --seeds 3 +experiment=cpu_smoke",
    )
    parser.add_argument("name", nargs="?", help="grid name (see --list)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every job")
    parser.add_argument("--list", action="store_true", help="list the grids and exit")
    parser.add_argument(
        "--seeds",
        metavar="N|S,S,..",
        help="run every cell with seeds 0..N-1 (or these seeds) and aggregate them",
    )
    parser.add_argument(
        "--collect",
        type=Path,
        nargs="+",
        metavar="DIR",
        help="only compare existing multiruns (several: one table)",
    )
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="where --collect of several sweeps writes"
    )
    parser.add_argument("--metric", help="rank by this summary key (default: optimized_metric)")
    parser.add_argument("--mode", choices=("max", "min"), help="higher or lower is better")
    parser.add_argument("--x", metavar="KEY", help="swept key on the metric plot's x axis")
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
            if args.seeds is not None:
                raise SweepError("--seeds runs a grid; --collect only compares finished ones")
            out = args.out
            if out is None and len(args.collect) > 1:
                out = claim_stamped_dir(Path("multirun") / "collected")
            return report(args.collect, args.metric, args.mode, args.plot, out, args.x)
        if args.name is None:
            raise SweepError(
                "give a grid name (python sweep.py --list shows them) or --collect DIR"
            )
        grid = grid_path(experiments_dir, args.name)
        if not grid.is_file():
            known = ", ".join(grid_names(experiments_dir))
            raise SweepError(
                f"no grid '{args.name}' in {experiments_dir / 'sweeps'}; use one of: {known}"
            )
        overrides = list(args.overrides)
        if args.seeds is not None:
            overrides.append(seed_override(parse_seeds(args.seeds), grid, overrides))
        message = missing_plugin_message(
            [f"+experiment/sweeps={args.name}", *overrides], experiments_dir
        )
        if message is not None:
            raise SweepError(message)
        try:  # a sweep whose jobs would not report the ranked metric does not start
            check_ranking(root / "conf", args.name, overrides, args.metric)
        except RankingUnavailable as exc:
            raise SweepError(str(exc)) from None
        given = [o.partition("=")[2] for o in overrides if o.startswith("hydra.sweep.dir=")]
        # A fresh directory even when another sweep starts in the same second.
        sweep_dir = Path(given[-1]) if given else claim_stamped_dir(Path("multirun") / args.name)
        status = run_grid(root / "train.py", args.name, overrides, sweep_dir)
        if not sweep_dir.is_dir() or not any(sweep_dir.glob("*/.hydra")):
            raise SweepError(
                f"the multirun started no job (exit status {status}); see its output above"
            )
        return max(
            report(sweep_dir, args.metric, args.mode, args.plot, None, args.x),
            EXIT_JOB_FAILED if status else 0,
        )
    except SweepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
