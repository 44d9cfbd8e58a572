"""A run's `report.html`: what it trained, how the losses went, how good it is, what it makes.

Everything is read back from the run directory (summary.json, metrics.jsonl, contact/, samples/,
provenance.json, .hydra/config.yaml), so a report can be rebuilt at any time for any run, finished
or not: `python -m cyclegan.reports RUN_DIR`. Training writes it at its end (rank 0).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import yaml

from cyclegan.config.provenance import read as read_provenance
from cyclegan.evaluation.contact import CONTACT_DIR, read_contact_info
from cyclegan.evaluation.ranking import lower_is_better
from cyclegan.reports.charts import Chart, line_chart
from cyclegan.reports.html import REPORT_FILE, file_uri, image_uri, render

log = logging.getLogger(__name__)

MAX_SAMPLE_GRIDS = 4  # the first and the last ones: a report stays a few hundred kB
DIRECTIONS = (("AB", "A", "B"), ("BA", "B", "A"))


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """metrics.jsonl's rows (a torn line is skipped); empty without the file (logger=none)."""
    rows = []
    path = run_dir / "metrics.jsonl"
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
    return rows


def _series(rows: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    points = {
        int(r["step"]): float(r[key])
        for r in rows
        if isinstance(r.get(key), int | float) and math.isfinite(float(r[key]))
    }  # a step logged twice (an older run's replay) shows once
    steps = sorted(points)
    return steps, [points[s] for s in steps]


# Which logged keys share a plot (one scale each): the generators' losses, the discriminators',
# the learning rate, and each evaluation metric over the evaluations.
PLOT_GROUPS = (
    ("generator losses", lambda k: k.startswith("train/loss_") and "_D" not in k),
    ("discriminator losses", lambda k: k.startswith("train/loss_D")),
    ("learning rate", lambda k: k == "train/lr"),
    *(
        (f"evaluation: {m.upper()}", lambda k, m=m: k.startswith(f"eval/{m}_"))
        for m in ("psnr", "ssim", "fid", "kid")
    ),
)


def loss_plots(rows: list[dict[str, Any]]) -> list[Chart]:
    """One chart per group of logged keys with a curve (two points or more)."""
    keys = sorted({k for r in rows for k in r if k not in ("step", "epoch")})
    charts = []
    for title, wanted in PLOT_GROUPS:
        series = {k.split("/", 1)[1]: _series(rows, k) for k in keys if wanted(k)}
        series = {k: v for k, v in series.items() if len(v[0]) > 1}
        if series:
            charts.append(line_chart(title, series))
    return charts


def evaluation_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Per direction and metric: the final value, the best, and the baselines beside them."""
    rows = []
    for direction, src, dst in DIRECTIONS:
        for metric in ("psnr", "ssim", "fid", "kid"):
            key = f"{metric}_{direction}"
            if f"eval/{key}" not in summary:
                continue
            rows.append(
                {
                    "name": f"{src}->{dst} {metric.upper()}",
                    "better": "lower" if lower_is_better(f"eval/{key}") else "higher",
                    "model": summary.get(f"eval/{key}"),
                    "best": summary.get(f"best/{key}"),
                    "identity": summary.get(f"baseline/identity/{key}"),
                    "mean": summary.get(f"baseline/mean/{key}"),
                }
            )
    return rows


def _tiles(path: Path, n: int) -> list[str]:
    """The n tiles of a contact strip (images side by side), each as a data URI."""
    from PIL import Image

    with Image.open(path) as strip:
        strip = strip.convert("RGB")
        width = strip.width // n
        return [
            image_uri(strip.crop((i * width, 0, (i + 1) * width, strip.height))) for i in range(n)
        ]


def fixed_images(run_dir: Path) -> list[dict[str, Any]]:
    """Per direction, the fixed test images: input, translation, ground truth (paired) and their
    per-image metrics, from contact/ (written at the end of training)."""
    info = read_contact_info(run_dir)
    if not info:
        return []
    folder, n = run_dir / CONTACT_DIR, int(info["n_images"])
    sections = []
    for direction, src, dst in DIRECTIONS:
        if f"fake_{dst}.png" not in info["files"]:
            continue
        columns = {"input": _tiles(folder / f"real_{src}.png", n)}
        columns["translation"] = _tiles(folder / f"fake_{dst}.png", n)
        if info.get("paired"):
            columns["ground truth"] = _tiles(folder / f"real_{dst}.png", n)
        metrics = (info.get("per_image") or {}).get(direction, {})
        rows = [
            {
                "index": i,
                "images": [columns[c][i] for c in columns],
                "metrics": [values[i] for values in metrics.values()],
            }
            for i in range(n)
        ]
        sections.append(
            {
                "title": f"{src} -> {dst}",
                "image_columns": list(columns),
                "metric_columns": list(metrics),
                "rows": rows,
            }
        )
    return sections


def sample_grids(run_dir: Path) -> list[dict[str, Any]]:
    """The first and the last sample grids (samples/step_NNNNNNN.png) as data URIs."""
    grids = sorted((run_dir / "samples").glob("step_*.png"))
    if len(grids) > MAX_SAMPLE_GRIDS:
        grids = [grids[0], *grids[-(MAX_SAMPLE_GRIDS - 1) :]]
    shown = []
    for path in grids:
        uri = file_uri(path)
        if uri is not None:
            shown.append(
                {"step": int(path.stem.split("_")[1]), "uri": uri, "width": _shown_width(path)}
            )
    return shown


def _shown_width(path: Path, most: int = 360) -> int:
    """Small grids are enlarged by a whole factor (pixels stay sharp) while their longer side
    stays within `most` px, so that a few fit side by side on a laptop's screen."""
    from PIL import Image

    with Image.open(path) as image:
        width, height = image.size
    return width * max(1, most // max(width, height))


def config_text(run_dir: Path, config: dict[str, Any] | None) -> str | None:
    """The resolved config as YAML (given by training), else the saved .hydra/config.yaml."""
    if config is not None:
        config = {k: v for k, v in config.items() if k != "provenance"}
        return yaml.safe_dump(config, sort_keys=False)
    saved = run_dir / ".hydra" / "config.yaml"
    return saved.read_text() if saved.is_file() else None


def run_context(run_dir: Path, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything the run page shows, read from the run directory."""
    summary = read_json(run_dir / "summary.json")
    provenance = read_provenance(run_dir)
    metric = (summary or {}).get("optimized_metric")
    overrides_file = run_dir / ".hydra" / "overrides.yaml"
    overrides = yaml.safe_load(overrides_file.read_text()) if overrides_file.is_file() else None
    return {
        "title": run_dir.name if run_dir.name not in ("", ".") else str(run_dir),
        "overrides": " ".join(map(str, overrides or [])),
        "run_dir": str(run_dir),
        "summary": summary,
        "metric": metric,
        "metric_value": (summary or {}).get(metric) if metric else None,
        "evaluation": evaluation_rows(summary or {}),
        "protocol": yaml.safe_dump(summary["eval_protocol"], sort_keys=False)
        if summary and summary.get("eval_protocol")
        else None,
        "plots": loss_plots(read_metrics(run_dir)),
        "fixed": fixed_images(run_dir),
        "samples": sample_grids(run_dir),
        "config": config_text(run_dir, config),
        "provenance": provenance,
        "provenance_text": yaml.safe_dump(provenance, sort_keys=False) if provenance else None,
    }


def write_run_report(run_dir: str | Path, config: dict[str, Any] | None = None) -> Path:
    """Write `<run dir>/report.html`; returns its path."""
    run_dir = Path(run_dir)
    return render("run.html.j2", run_dir / REPORT_FILE, **run_context(run_dir, config))


def write_report_safely(run_dir: str | Path, config: dict[str, Any] | None = None) -> Path | None:
    """`write_run_report` for the end of training: a report that cannot be made (a full disk,
    a missing matplotlib) is a warning, never a failed run after hours of training."""
    try:
        path = write_run_report(run_dir, config)
    except Exception as exc:
        log.warning(
            "could not write %s (%s: %s)", Path(run_dir) / REPORT_FILE, type(exc).__name__, exc
        )
        return None
    log.info("report: %s", path)
    return path
