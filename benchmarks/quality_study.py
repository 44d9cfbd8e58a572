"""Issue 23's study read back from its multiruns: translation quality against training steps per
grid cell, for the generators' average (EMA) and the trained generators (raw), mean ± std over
seeds, against a target (the default run's final numbers).

Each job of `experiments/sweeps/quality_study*.yaml` keeps the average (trainer.ema_decay) and
scores the trained generators too (trainer.eval_raw), so one run gives both rows of a cell: the
average never feeds back into training. The script prints, and writes as markdown next to the
plot:

- per cell and weights, the four test metrics at the last evaluation (mean ± std over seeds) and
  whether each can be told apart from the best row (`cyclegan.sweeps.aggregate`: intervals of
  mean ± 2 SE), and the first scored step where the mean meets every target;
- the paired effect of the average (EMA minus raw, the same runs): mean ± std of the difference;
- `<out>/<name>_curves.png`: PSNR and SSIM of both directions against the step, one line per
  cell and weights, error bars over seeds, the targets dashed.

    python benchmarks/quality_study.py multirun/quality_study/<stamp> --name cyclegan_400 \
        --target 17.26,0.6408,19.49,0.5450
"""

from __future__ import annotations

import argparse
import json
from functools import cache
from pathlib import Path

from omegaconf import OmegaConf

from cyclegan.sweeps.aggregate import Stat, cannot_tell_apart, summarize
from cyclegan.sweeps.jobs import collect_jobs, group_cells
from cyclegan.sweeps.plots import pyplot
from cyclegan.sweeps.tables import format_markdown, format_table

METRICS = ("psnr_AB", "ssim_AB", "psnr_BA", "ssim_BA")
WEIGHTS = {"ema": "eval/", "raw": "eval/raw/"}


@cache
def scored(metrics_file: Path) -> dict[str, dict[int, float]]:
    """{eval key: {step: value}} of one job's metrics.jsonl, read once for every metric."""
    curves: dict[str, dict[int, float]] = {}
    for line in metrics_file.read_text().splitlines():
        row = json.loads(line) if line.strip() else {}
        for key, value in row.items():
            if key.startswith("eval/") and isinstance(value, int | float):
                curves.setdefault(key, {})[row["step"]] = float(value)
    return curves


def curves(jobs: list, metric: str, prefix: str) -> dict[int, list[float]]:
    """{step: [value per seed]} of one metric over a cell's finished jobs."""
    by_step: dict[int, list[float]] = {}
    for job in jobs:
        if job.failed:
            continue
        for step, value in scored(job.path / "metrics.jsonl").get(prefix + metric, {}).items():
            by_step.setdefault(step, []).append(value)
    return by_step


def label_by(jobs: list, keys: list[str]) -> None:
    """Name each job's cell by its configured values of `keys` (`optim.lr=0.0004 ...`), so cells
    of several sweeps that set a key differently (a grid value, a pinned one, the default) line
    up; keys a job's config lacks are left out."""
    for job in jobs:
        cfg = OmegaConf.create(job.config)
        absent = object()  # a key the config lacks; a null value (`None`) is still shown
        values = {k: OmegaConf.select(cfg, k, default=absent) for k in keys}
        job.cell = " ".join(f"{k}={v}" for k, v in values.items() if v is not absent)


def study_rows(sweep_dirs: list[Path], keys: list[str] | None = None) -> list[dict]:
    """One row per (cell, weights): {step: {metric: Stat}} and the cell's label."""
    jobs = collect_jobs(sweep_dirs)
    if keys:
        label_by(jobs, keys)
    cells = group_cells(jobs, [])
    rows = []
    for cell in cells:
        for weights, prefix in WEIGHTS.items():
            per_metric = {m: curves(cell.jobs, m, prefix) for m in METRICS}
            per_metric = {m: c for m, c in per_metric.items() if c}  # CUT: A->B only
            if not per_metric:
                continue
            steps = sorted(set.intersection(*(set(c) for c in per_metric.values())))
            stats = {s: {m: summarize(c[s]) for m, c in per_metric.items()} for s in steps}
            rows.append({"cell": cell.label, "weights": weights, "stats": stats, "jobs": cell.jobs})
    return rows


def first_reaching(stats: dict[int, dict[str, Stat]], target: dict[str, float]) -> int | None:
    """The first scored step whose means meet every target (higher is better for all four)."""
    for step in sorted(stats):
        if all(stats[step][m].mean >= target[m] for m in stats[step] if m in target):
            return step
    return None


def paired_effect(rows: list[dict], metric: str) -> dict[str, Stat | None]:
    """Per cell: EMA minus raw at the last step, seed by seed (the same training runs)."""
    effects = {}
    for row in rows:
        if row["weights"] != "ema":
            continue
        diffs = []
        for job in row["jobs"]:
            if job.failed:
                continue
            curves = scored(job.path / "metrics.jsonl")
            ema, raw = curves.get("eval/" + metric), curves.get("eval/raw/" + metric)
            if ema and raw:
                diffs.append(ema[max(ema)] - raw[max(raw)])
        effects[row["cell"]] = summarize(diffs)
    return effects


def train_seconds(row: dict) -> str:
    """The cell's training time (summary time/train_s), mean ± std over its seeds: the cost side
    (R1 adds a backward-of-backward through D; EMA and the raw scores add no training time)."""
    stat = summarize([j.summary["time/train_s"] for j in row["jobs"] if not j.failed])
    return "-" if stat is None else stat.format(3)


def scored_metrics(rows: list[dict]) -> list[str]:
    """The metrics every row has (CycleGAN: both directions; CUT: A->B)."""
    return [m for m in METRICS if all(m in r["stats"][max(r["stats"])] for r in rows)]


def table(rows: list[dict], target: dict[str, float]) -> tuple[list[str], list[list[str]]]:
    """The last step's metrics per row, "same as best?" per metric, the first step at target."""
    metrics = scored_metrics(rows)
    last = {id(r): r["stats"][max(r["stats"])] for r in rows}
    best = {m: max(rows, key=lambda r: last[id(r)][m].mean) for m in metrics}
    header = ["cell", "weights", "step", *metrics, "same as best? (" + "/".join(metrics) + ")"]
    header += ["meets target at step", "train s"]
    body = []
    order = sorted(rows, key=lambda r: -last[id(r)]["psnr_AB"].mean)
    for row in order:
        stats = last[id(row)]
        same = []
        for m in metrics:
            if row is best[m]:
                same.append("best")
                continue
            verdict = cannot_tell_apart(stats[m], last[id(best[m])][m])
            same.append("?" if verdict is None else ("yes" if verdict else "no"))
        reach = first_reaching(row["stats"], target) if target else None
        body.append(
            [row["cell"], row["weights"], str(max(row["stats"]))]
            + [stats[m].format() for m in metrics]
            + ["/".join(same), "-" if reach is None else str(reach), train_seconds(row)]
        )
    return header, body


def short(label: str) -> str:
    """`optim.lr=0.0002 loss.lambda_r1=0` -> `lr=0.0002 lambda_r1=0` (legends stay in the figure)."""
    return " ".join(part.split("=")[0].rsplit(".", 1)[-1] + "=" + part.partition("=")[2]
                    for part in label.split())  # fmt: skip


def plot(
    rows: list[dict], target: dict[str, float], title: str, path: Path, weights: str = "ema,raw"
) -> Path:
    """PSNR/SSIM of both directions against the step: one line per cell and weights."""
    plt = pyplot()
    metrics = scored_metrics(rows)
    shape = (2, 2) if len(metrics) == 4 else (1, len(metrics))
    fig, axes = plt.subplots(*shape, figsize=(13, 10 if len(metrics) == 4 else 6), sharex=True)
    cells = list(dict.fromkeys(r["cell"] for r in rows))
    colors = [plt.get_cmap("tab10" if len(cells) <= 10 else "tab20")(i) for i in range(20)]
    rows = [r for r in rows if r["weights"] in weights.split(",")]
    for ax, metric in zip(axes.flat, metrics, strict=True):
        for row in rows:
            steps = sorted(row["stats"])
            stats = [row["stats"][s][metric] for s in steps]
            color = colors[cells.index(row["cell"]) % len(colors)]
            ax.errorbar(
                [s + (4 if row["weights"] == "raw" else 0) for s in steps],
                [s.mean for s in stats],
                yerr=[s.std or 0.0 for s in stats],
                color=color,
                linestyle="-" if row["weights"] == "ema" else ":",
                marker="o" if row["weights"] == "ema" else "x",
                capsize=3,
                label=f"{short(row['cell'])} [{row['weights']}]",
            )
        if metric in target:
            ax.axhline(target[metric], color="black", linestyle="--", linewidth=1, label="target")
        direction = metric.split("_")[1]
        ax.set_title(f"{metric.split('_')[0].upper()} {direction[0]}->{direction[1]}")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    n = sorted({len([j for j in r["jobs"] if not j.failed]) for r in rows})
    shown = {"ema,raw": "solid = EMA, dotted = raw", "ema": "EMA", "raw": "raw weights"}[weights]
    fig.suptitle(f"{title}: mean ± std over seeds (n = {','.join(map(str, n))}); {shown}; "
                 "dashed = target")  # fmt: skip
    handles, labels = axes.flat[0].get_legend_handles_labels()
    ncol = 2 if max(len(x) for x in labels) > 45 else 3
    legend_rows = -(-len(labels) // ncol)
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8)
    fig.tight_layout(rect=(0, 0.025 + 0.022 * legend_rows, 1, 0.96))
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sweeps", nargs="+", type=Path, help="multirun directories")
    parser.add_argument("--name", required=True, help="file name stem of the outputs")
    parser.add_argument("--title", default=None)
    parser.add_argument("--target", default="", help="psnr_AB,ssim_AB[,psnr_BA,ssim_BA]")
    parser.add_argument("--out", type=Path, default=Path("docs/quality_study"))
    parser.add_argument("--keys", default="", help="label cells by these config keys (a,b,...)")
    parser.add_argument("--plot-weights", default="ema,raw", help="ema,raw | ema | raw")
    args = parser.parse_args()
    values = [float(v) for v in args.target.split(",") if v]
    target = dict(zip(METRICS, values, strict=False))
    rows = study_rows(args.sweeps, [k for k in args.keys.split(",") if k])
    if not rows:
        raise SystemExit(f"no scored jobs in {args.sweeps}: run the sweep first")
    args.out.mkdir(parents=True, exist_ok=True)
    header, body = table(rows, target)
    metrics = scored_metrics(rows)
    effects = {m: paired_effect(rows, m) for m in metrics}
    effect_rows = [
        [cell] + [effects[m][cell].format(2) if effects[m][cell] else "-" for m in metrics]
        for cell in effects["psnr_AB"]
    ]
    effect_header = ["cell", *(f"EMA - raw {m}" for m in metrics)]
    print(format_table(header, body))
    print()
    print(format_table(effect_header, effect_rows))
    title = args.title or args.name
    picture = plot(rows, target, title, args.out / f"{args.name}_curves.png", args.plot_weights)
    text = [f"# {args.title or args.name}", "", format_markdown(header, body), ""]
    text += [format_markdown(effect_header, effect_rows), "", f"![curves]({picture.name})", ""]
    (args.out / f"{args.name}.md").write_text("\n".join(text))
    print(f"\nwrote {args.out / (args.name + '.md')} and {picture}")


if __name__ == "__main__":
    main()
