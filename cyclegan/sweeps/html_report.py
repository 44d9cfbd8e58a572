"""A sweep's `report.html`: the ranked cells and jobs, the warnings, the plots and the contact
sheet on one page, with a link to each job's own report (written here for jobs that have none,
e.g. failed ones or runs from before reports existed)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from cyclegan.reports.html import REPORT_FILE, file_uri, render
from cyclegan.reports.run_report import write_run_report
from cyclegan.sweeps.jobs import Cell, Job
from cyclegan.sweeps.tables import cell_table, job_table

log = logging.getLogger(__name__)


def job_reports(jobs: list[Job], out_dir: Path) -> dict[str, str]:
    """Each job's report, as a link relative to `out_dir` (so copying the folder that holds both
    keeps it working); a job without one gets one now. Jobs whose report cannot be made are left
    unlinked (and named in a warning)."""
    links = {}
    for job in jobs:
        path = job.path / REPORT_FILE
        if not path.is_file():
            try:
                write_run_report(job.path)
            except Exception as exc:
                log.warning("no report for job %s (%s: %s)", job.name, type(exc).__name__, exc)
                continue
        links[job.name] = Path(os.path.relpath(path, out_dir)).as_posix()
    return links


def _without(
    header: list[str], rows: list[list[Any]], column: str
) -> tuple[list[str], list[list[Any]]]:
    i = header.index(column)
    return header[:i] + header[i + 1 :], [row[:i] + row[i + 1 :] for row in rows]


def _text(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def sweep_context(
    cells: list[Cell],
    jobs: list[Job],
    metric: str,
    mode: str,
    columns: list[str],
    out_dir: Path,
) -> dict[str, Any]:
    """The tables of the page: cells (mean ± std, "same as best?") and jobs, each linked."""
    links = job_reports(jobs, out_dir)
    header, rows = _without(*cell_table(cells, metric, mode, columns), "jobs")
    cell_rows = [
        {
            "values": [_text(v) for v in row],
            "jobs": [(j.name, links.get(j.name)) for j in cell.jobs],
            "best": cell.vs_best == "best",
            "failed": cell.failed,
        }
        for cell, row in zip(cells, rows, strict=True)
    ]
    jheader, jrows = job_table(jobs, metric, mode, columns)
    job_rows = [
        {
            "values": [_text(v) for v in row],
            "link": links.get(job.name),
            "best": job.rank == 1,
            "failed": job.failed,
        }
        for job, row in zip(jobs, jrows, strict=True)
    ]
    return {
        "cell_header": header,
        "cell_rows": cell_rows,
        "job_header": jheader,
        "job_rows": job_rows,
        "metric": metric,
        "mode": mode,
    }


def caption(picture: Path) -> str:
    """What a sweep picture shows, from its file name (as `sweep.py` names them)."""
    name = picture.stem
    if name.startswith("contact_"):
        src, dst = name.removeprefix("contact_")
        return (
            f"contact sheet: the same test images ({src}) translated to {dst} by each cell's first "
            "seed, best first, under the inputs (and the ground truth where there is one)"
        )
    if name.startswith("curves_"):
        return (
            f"{name.removeprefix('curves_').replace('_', '/', 1)} during training, one line per job"
        )
    metric, _, key = name.partition("_vs_")
    return f"{metric.replace('_', '/', 1)} against {key}: mean ± std over each cell's seeds"


def write_sweep_report(
    out_dir: Path,
    title: str,
    headline: str,
    tables: dict[str, Any],
    notes: list[str],
    warnings: list[str],
    pictures: list[Path],
    viewers: list[str],
) -> Path:
    """`<out dir>/report.html`: `tables` from `sweep_context`, the notes under the cell table,
    the warnings at the top, the pictures (plots, contact sheet) embedded, the viewer commands
    (TensorBoard, W&B) at the end."""
    shown = [{"title": caption(p), "uri": file_uri(p)} for p in pictures]
    return render(
        "sweep.html.j2",
        out_dir / REPORT_FILE,
        title=title,
        headline=headline,
        warnings=warnings,
        notes=[n.strip() for n in notes if n.strip()],
        pictures=[p for p in shown if p["uri"]],
        viewers=viewers,
        **tables,
    )
