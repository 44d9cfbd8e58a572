"""Run a named grid from `experiments/sweeps/` as one Hydra multirun, then compare its jobs.

`python sweep.py NAME [overrides...] [--seeds 3]` runs `train.py -m +experiment/sweeps=NAME
[overrides...] [seed=0,1,2]` (any launcher or sweeper: basic, joblib, submitit, Optuna) into
`multirun/NAME/<time>/`, then reads each job's `summary.json`, `metrics.jsonl`, `.hydra/` and
`contact/` back from disk and writes the comparison next to them:

- the table, ranked by cell: a cell is the jobs with the same overrides but the seed, shown as mean ±
  std over its seeds, n and the seeds, and whether it can be told apart from the best cell
  (`cyclegan.sweeps.aggregate`); printed, in `comparison.md`, and in `comparison.csv` with one row per cell
  and one per job;
- `<metric>_vs_<key>.png`: the ranked metric against a swept value, error bars over seeds, one line
  per setting of the other swept keys;
- `contact_AB.png`: the same fixed test images translated by every cell (its first seed);
- `curves_<key>.png`: one training curve per job;
- `report.html`: all of the above on one page that opens offline, linking each job's report;
- a warning for each way the jobs differ besides their overrides (commit, evaluation protocol,
  dependency versions: `provenance_check`), and the TensorBoard and W&B commands (`viewers`).

A job that failed is listed as failed; the others still count. Everything is read from disk, so
`--collect DIR [DIR ...]` redoes the comparison of any multiruns, several sweeps in one table.
Jobs and cells are read and ranked in `jobs`, the pictures drawn in `plots`, the page written by
`html_report`; this module runs the grid and writes the tables.
"""

from __future__ import annotations

import argparse
import math
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from cyclegan.config.plugins import experiment_settings, missing_plugin_message
from cyclegan.config.preflight import RankingUnavailable, check_ranking
from cyclegan.config.renamed import renamed_key_message
from cyclegan.config.run_identity import claim_stamped_dir, sweep_group
from cyclegan.sweeps.html_report import sweep_context, write_sweep_report
from cyclegan.sweeps.jobs import (
    SEED_KEY,
    Cell,
    Job,
    SweepError,
    collect_jobs,
    group_cells,
    is_seed_key,
    rank_cells,
    rank_jobs,
    ranking_rule,
)
from cyclegan.sweeps.plots import plot_curves, plot_metric_vs, write_contact_sheet
from cyclegan.sweeps.provenance_check import comparison_warnings
from cyclegan.sweeps.tables import (
    cell_table,
    csv_table,
    format_markdown,
    format_table,
    has_spread,
    job_table,
    shown_columns,
    write_csv,
)
from cyclegan.sweeps.viewers import optuna_lines, tensorboard_lines, wandb_summary

EXIT_JOB_FAILED = 1
EXIT_USAGE = 2
DEFAULT_PLOT = "train/loss_cycle"


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
    if out_dir is None and len(dirs) > 1:
        raise SweepError("comparing several sweeps: say where the comparison goes with --out DIR")
    out_dir = out_dir or dirs[0]
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = collect_jobs(dirs)
    metric, mode = ranking_rule(jobs, metric, mode)
    columns = shown_columns(jobs, metric)
    ranked_jobs = rank_jobs(jobs, metric, mode)
    cells = rank_cells(group_cells(jobs, [metric, *columns]), metric, mode)
    header, rows = write_tables(cells, ranked_jobs, metric, mode, columns, out_dir)

    failed = sum(j.failed for j in jobs)
    where = dirs[0] if len(dirs) == 1 else f"{len(dirs)} sweeps"
    headline = (
        f"{len(jobs)} jobs in {where} ({len(cells)} cells), ranked by {metric} ({mode}); "
        f"{failed} failed"
    )
    print(f"\n{headline}\n")
    print(format_table(header, rows))
    notes = _notes(cells, jobs, metric)
    warnings = comparison_warnings(jobs)  # commit, evaluation protocol, versions
    for line in [*notes, *(["", *warnings] if warnings else [])]:
        print(line)
    print(f"\nwritten: {out_dir / 'comparison.csv'} (a row per cell and per job), {out_dir / 'comparison.md'}")  # fmt: skip
    pictures = _pictures(cells, ranked_jobs, metric, mode, plot, out_dir, x_key)
    viewers = optuna_lines(dirs) + wandb_summary(jobs, dirs) + tensorboard_lines(dirs)
    for line in viewers:
        print(line)
    tables = sweep_context(cells, ranked_jobs, metric, mode, columns, out_dir)
    title = str(where) if len(dirs) > 1 else sweep_group(dirs[0])
    page = write_sweep_report(out_dir, title, headline, tables, notes, warnings, pictures, viewers)
    print(f"report: {page}")
    return EXIT_JOB_FAILED if failed else 0


def write_tables(
    cells: list[Cell], jobs: list[Job], metric: str, mode: str, columns: list[str], out_dir: Path
) -> tuple[list[str], list[list[Any]]]:
    """comparison.csv (cells and jobs) and comparison.md; returns the cell table to print."""
    header, rows = cell_table(cells, metric, mode, columns)
    write_csv(out_dir / "comparison.csv", *csv_table(cells, jobs, metric, mode, columns))
    markdown = "## Cells\n\n" + format_markdown(header, rows)
    markdown += "\n## Jobs\n\n" + format_markdown(*job_table(jobs, metric, mode, columns))
    (out_dir / "comparison.md").write_text(markdown)
    return header, rows


def _notes(cells: list[Cell], jobs: list[Job], metric: str) -> list[str]:
    """What the "same as best?" column means (when shown), or why nothing is ranked."""
    notes = []
    if has_spread(cells, metric):
        unknown = any(c.vs_best == "?" for c in cells)
        notes.append(
            "\nsame as best?: yes = cannot be told apart from the best at this n (mean ± 2 "
            "standard errors overlap), no = worse beyond that"
            + ("; ? = one seed, no spread to judge by" if unknown else "")
        )
    if not any(c.rank for c in cells):
        notes.append("\n" + _missing_metric_line(jobs, metric))
    return notes


def _pictures(
    cells: list[Cell],
    jobs: list[Job],
    metric: str,
    mode: str,
    plot: str,
    out_dir: Path,
    x_key: str | None,
) -> list[Path]:
    """The plots and the contact sheet, each named as written or said why not; returns them."""
    written: list[Path] = []
    try:
        png = plot_metric_vs(cells, metric, mode, x_key, out_dir)
        print(f"plot: {png}" if png else f"no {metric} plot: fewer than two cells have it")
        curves = plot_curves(jobs, plot, out_dir / f"curves_{plot.replace('/', '_')}.png")
        print(
            f"plot: {curves}" if curves else f"no curves: no job logged {plot!r} in metrics.jsonl"
        )
        written += [p for p in (png, curves) if p is not None]
    except ImportError:
        print("no plots: matplotlib is not installed (pip install matplotlib)")
    sheet, missing = write_contact_sheet(cells, metric, out_dir)
    if sheet is not None:
        print(f"contact sheet: {sheet}")
        written.append(sheet)
    elif missing:
        print(
            "no contact sheet: no job left fixed translations (<job>/contact/, written at the "
            "end of training)"
        )
        return written
    if missing:
        print(
            f"no fixed translations (contact/contact.json) from {len(missing)} cell(s): "
            + "; ".join(missing[:3])
            + (" ..." if len(missing) > 3 else "")
        )
    return written


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
    overrides = [parser.parse_override(f"{k}={v}") for k, v in params.items()]
    # A key pinned to one value (`a: 0`, e.g. over a grid it extends) is one run's worth.
    sizes = [
        len(list(o.sweep_string_iterator())) if o.is_sweep_override() else 1 for o in overrides
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
    given = [o for o in overrides if is_seed_key(o.partition("=")[0])]
    if given or any(is_seed_key(k) for k in sweeper.get("params") or {}):
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
    try:
        if args.list:
            list_grids(root / "experiments")
            return 0
        if args.collect is not None:
            return collect(args)
        return run_and_report(args, root)
    except SweepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def collect(args: argparse.Namespace) -> int:
    """--collect DIR [DIR ...]: compare finished multiruns (several: into --out or a new folder)."""
    if args.seeds is not None:
        raise SweepError("--seeds runs a grid; --collect only compares finished ones")
    out = args.out
    if out is None and len(args.collect) > 1:
        out = claim_stamped_dir(Path("multirun") / "collected")
    return report(args.collect, args.metric, args.mode, args.plot, out, args.x)


def checked_overrides(args: argparse.Namespace, root: Path) -> list[str]:
    """The grid's overrides (with --seeds' seed=...), refused before any work when the grid is
    unknown, a plugin is missing or the jobs would not report the ranked metric."""
    experiments_dir = root / "experiments"
    if args.name is None:
        raise SweepError("give a grid name (python sweep.py --list shows them) or --collect DIR")
    grid = grid_path(experiments_dir, args.name)
    if not grid.is_file():
        known = ", ".join(grid_names(experiments_dir))
        raise SweepError(f"no grid '{args.name}' in {experiments_dir / 'sweeps'}; use one of: {known}")  # fmt: skip
    overrides = list(args.overrides)
    renamed = renamed_key_message(overrides)
    if renamed is not None:
        raise SweepError(renamed)
    if args.seeds is not None:
        overrides.append(seed_override(parse_seeds(args.seeds), grid, overrides))
    grid_override = f"+experiment/sweeps={args.name}"
    message = missing_plugin_message([grid_override, *overrides], experiments_dir)
    if message is not None:
        raise SweepError(message)
    try:  # a sweep whose jobs would not report the ranked metric does not start
        check_ranking(root / "conf", args.name, overrides, args.metric)
    except RankingUnavailable as exc:
        raise SweepError(str(exc)) from None
    return overrides


def run_and_report(args: argparse.Namespace, root: Path) -> int:
    """Run the grid as one multirun, then compare its jobs; 1 when a job (or the run) failed."""
    overrides = checked_overrides(args, root)
    given = [o.partition("=")[2] for o in overrides if o.startswith("hydra.sweep.dir=")]
    # A fresh directory even when another sweep starts in the same second.
    sweep_dir = Path(given[-1]) if given else claim_stamped_dir(Path("multirun") / args.name)
    status = run_grid(root / "train.py", args.name, overrides, sweep_dir)
    if not sweep_dir.is_dir() or not any(sweep_dir.glob("*/.hydra")):
        raise SweepError(f"the multirun started no job (exit status {status}); see its output above")  # fmt: skip
    compared = report(sweep_dir, args.metric, args.mode, args.plot, None, args.x)
    return max(compared, EXIT_JOB_FAILED if status else 0)
