"""A sweep's pictures: the metric against a swept value with error bars over seeds, one training
curve per job, and the contact sheet of the fixed test images (one row per cell)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from cyclegan.evaluation.contact import contact_sheet, sheet_rows_for_jobs
from cyclegan.sweeps.aggregate import Stat
from cyclegan.sweeps.jobs import Cell, Job, SweepError, metric_value


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


def pyplot() -> Any:
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
    plt = pyplot()
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


def _lines(cells: list[Cell], x: str, metric: str) -> dict[str, list[tuple[str, Stat]]]:
    """(x value, stat) points per setting of the swept keys other than `x`."""
    lines: dict[str, list[tuple[str, Stat]]] = {}
    for cell in cells:
        parsed = _parse_label(cell.label)
        rest = " ".join(f"{k}={v}" for k, v in parsed.items() if k != x) or "all"
        lines.setdefault(rest, []).append((parsed.get(x, "-"), cell.stats[metric]))  # type: ignore[arg-type]
    return lines


def _positions(values: list[str], order: list[str], dodge: float) -> tuple[list[float], bool]:
    """x positions of `values`, shifted by `dodge` (a fraction of the axis) so that the lines'
    error bars do not hide each other; and whether the axis is logarithmic (numeric values
    spanning 20x or more, e.g. learning rates). Non-numeric values are placed 0, 1, 2, ..."""
    nums = [_number(v) for v in order]
    if any(n is None for n in nums):
        return [order.index(v) + dodge * len(order) for v in values], False
    lo, hi = min(nums), max(nums)  # type: ignore[type-var]
    if lo > 0 and hi / lo >= 20:  # type: ignore[operator]
        return [_number(v) * 10 ** (dodge * math.log10(hi / lo)) for v in values], True  # type: ignore[operator]
    return [_number(v) + dodge * (hi - lo) for v in values], False  # type: ignore[operator]


def plot_metric_vs(
    cells: list[Cell], metric: str, mode: str, x_key: str | None, out_dir: Path
) -> Path | None:
    """`metric` (mean over seeds, error bars ± std) against the swept value `x_key`, one line per
    setting of the other swept keys; None when fewer than two cells have the metric."""
    scored = [c for c in cells if c.stats.get(metric) is not None]
    x = choose_x(scored, x_key) if len(scored) > 1 else None
    if x is None:
        return None
    lines = _lines(scored, x, metric)
    values = {v for points in lines.values() for v, _ in points}
    numeric = all(_number(v) is not None for v in values)
    order = sorted(values, key=lambda v: _number(v) if numeric else v)  # type: ignore[return-value]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    log_x = False
    for i, rest in enumerate(sorted(lines)):
        points = sorted(lines[rest], key=lambda p: order.index(p[0]))
        dodge = (i - (len(lines) - 1) / 2) * 0.015
        xs, log_x = _positions([v for v, _ in points], order, dodge)
        errs = [s.std or 0.0 for _, s in points]
        ax.errorbar(xs, [s.mean for _, s in points], yerr=errs, marker="o", capsize=4, label=rest)
    if log_x:
        ax.set_xscale("log")
    ax.set_xticks([_number(v) for v in order] if numeric else range(len(order)), order)  # type: ignore[arg-type]
    ax.minorticks_off()
    seeds = sorted({s.n for points in lines.values() for _, s in points})
    ax.set(xlabel=x, ylabel=f"{metric} ({'higher' if mode == 'max' else 'lower'} is better)")
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
        value = metric_value(job, metric)
        stat = cell.stats.get(metric)
        rank = f"#{cell.rank} " if cell.rank else ""
        seed = f" seed={job.seed}" if job.seed is not None else ""
        text = f"{rank}{cell.label or job.name}{seed}: {metric} {'-' if value is None else f'{value:.4g}'}"
        if stat is not None and stat.n > 1:
            text += f" (cell {stat.format()}, n={stat.n})"
        entries.append((text, job.path))
        labels[text] = cell.label or job.name
    rows, missing = sheet_rows_for_jobs(entries, direction)
    missing = [labels[text] for text in missing]
    if not rows:
        return None, missing
    return contact_sheet(rows, out_dir / f"contact_{direction}.png"), missing
