"""A sweep's tables: cells (mean ± std over seeds, the "same as best?" mark) and jobs, for people
(printed, Markdown) and for scripts (CSV with one row per cell and one per job)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from cyclegan.sweeps.aggregate import Stat
from cyclegan.sweeps.jobs import Cell, Job, metric_value

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


def shown_columns(jobs: list[Job], metric: str) -> list[str]:
    """COLUMNS that any job has, besides the ranked metric."""
    return [c for c in COLUMNS if c != metric and any(metric_value(j, c) is not None for j in jobs)]


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
    return job.failure() if job.failed else "ok"


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
            *(metric_value(job, k) for k in (metric, *columns)),
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
            row += [metric_value(job, key), None]
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
