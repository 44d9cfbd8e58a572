"""sweep.py's `--x`, `--plot`, `--mode` and `--collect` of overlapping sweeps (README, Sweeps), on
job directories written the way a multirun leaves them (`.hydra/overrides.yaml`,
`.hydra/config.yaml`, `summary.json`, `metrics.jsonl`: what cyclegan/sweeps/jobs.py reads), so no
training is needed. The plots are read back from the figures matplotlib saves."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from cyclegan.sweeps.sweep import main

from .conftest import ROOT

CYC, ID = (5, 10, 20), (0, 5)  # lambda_grid's values


def psnr(cyc: int, lid: int, seed: int) -> float:
    """A made-up PSNR per job: higher with lambda_cyc, lower with lambda_id, a spread over seeds."""
    return 20 + cyc / 10 - lid / 5 + 0.1 * seed


def write_job(
    job: Path, overrides: list[str], summary: dict[str, Any], rows: list[dict[str, float]]
) -> None:
    (job / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(overrides), job / ".hydra" / "overrides.yaml")
    config = {"optimized_metric": "eval/psnr_AB", "optimized_mode": "max", "seed": 0}
    OmegaConf.save(OmegaConf.create(config), job / ".hydra" / "config.yaml")
    (job / "summary.json").write_text(json.dumps(summary))
    lines = [json.dumps({"step": i + 1, "epoch": 0, **row}) for i, row in enumerate(rows)]
    (job / "metrics.jsonl").write_text("".join(line + "\n" for line in lines))


def grid_sweep(sweep: Path, seeds: tuple[int, ...] = (0, 1)) -> dict[str, list[float]]:
    """lambda_cyc x lambda_id x seeds, one job each; returns each job's logged curves by name."""
    curves: dict[str, list[float]] = {}
    num = 0
    for cyc in CYC:
        for lid in ID:
            for seed in seeds:
                value = psnr(cyc, lid, seed)
                rows = [
                    {"train/loss_cycle": 1.0 / (step + num + 1), "eval/psnr_AB": value - 1 + step}
                    for step in range(3)
                ]
                overrides = [
                    f"loss.lambda_cyc={cyc}",
                    f"loss.lambda_id={lid}",
                    "+experiment/sweeps=lambda_grid",
                    f"seed={seed}",
                ]
                write_job(sweep / str(num), overrides, {"eval/psnr_AB": value}, rows)
                curves[str(num)] = [r["train/loss_cycle"] for r in rows]
                num += 1
    return curves


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def cells(out: Path) -> list[dict[str, str]]:
    return [r for r in read_csv(out / "comparison.csv") if r["kind"] == "cell"]


@pytest.fixture
def figures(monkeypatch) -> dict[str, Any]:
    """What each saved figure shows, by file name: its x label, x tick labels, y label and the
    (label, x data, y data) of each line; the figures are still written."""
    from matplotlib.figure import Figure

    seen: dict[str, Any] = {}
    save = Figure.savefig

    def record(fig: Figure, path: Any, *args: Any, **kwargs: Any) -> None:
        ax = fig.axes[0]
        seen[Path(path).name] = {
            "xlabel": ax.get_xlabel(),
            "ylabel": ax.get_ylabel(),
            "xticks": [t.get_text() for t in ax.get_xticklabels()],
            # error-bar plots: one container per line, labelled; plain plots: labelled lines
            "lines": [
                (c.get_label(), list(c.lines[0].get_xdata()), list(c.lines[0].get_ydata()))
                for c in ax.containers
            ]
            or [
                (line.get_label(), list(line.get_xdata()), list(line.get_ydata()))
                for line in ax.get_lines()
            ],
        }
        save(fig, path, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    return seen


def test_x_chooses_the_swept_key_on_the_metric_plots_axis(
    tmp_path: Path, figures: dict, capsys
) -> None:
    sweep = tmp_path / "sweep"
    grid_sweep(sweep)
    assert main(["--collect", str(sweep)], root=ROOT) == 0
    default = figures["eval_psnr_AB_vs_loss.lambda_cyc.png"]  # the key with the most values
    assert default["xlabel"] == "loss.lambda_cyc" and default["xticks"] == ["5", "10", "20"]
    assert {label for label, _, _ in default["lines"]} == {"loss.lambda_id=0", "loss.lambda_id=5"}

    figures.clear()
    assert main(["--collect", str(sweep), "--x", "loss.lambda_id"], root=ROOT) == 0
    assert "eval_psnr_AB_vs_loss.lambda_cyc.png" not in figures
    chosen = figures["eval_psnr_AB_vs_loss.lambda_id.png"]
    assert (sweep / "eval_psnr_AB_vs_loss.lambda_id.png").stat().st_size > 0
    assert chosen["xlabel"] == "loss.lambda_id" and chosen["xticks"] == ["0", "5"]
    lines = {label: ys for label, _, ys in chosen["lines"]}
    assert set(lines) == {f"loss.lambda_cyc={c}" for c in CYC}  # one line per other setting
    for cyc in CYC:  # each point: the mean over the two seeds of that cell
        means = [statistics.mean(psnr(cyc, lid, s) for s in (0, 1)) for lid in ID]
        assert lines[f"loss.lambda_cyc={cyc}"] == pytest.approx(means)

    capsys.readouterr()
    assert main(["--collect", str(sweep), "--x", "optim.lr"], root=ROOT) == 2
    err = capsys.readouterr().err
    assert "--x optim.lr: not a swept key of these cells" in err and err.count("\n") == 1


def test_plot_chooses_the_curves_drawn_per_job(tmp_path: Path, figures: dict, capsys) -> None:
    sweep = tmp_path / "sweep"
    curves = grid_sweep(sweep, seeds=(0,))
    assert main(["--collect", str(sweep)], root=ROOT) == 0
    default = figures["curves_train_loss_cycle.png"]
    assert default["ylabel"] == "train/loss_cycle" and len(default["lines"]) == 6
    by_job = {label.split(":")[0]: ys for label, _, ys in default["lines"]}
    assert by_job == curves  # each job's own logged values

    figures.clear()
    (sweep / "curves_train_loss_cycle.png").unlink()
    assert main(["--collect", str(sweep), "--plot", "eval/psnr_AB"], root=ROOT) == 0
    assert "curves_train_loss_cycle.png" not in figures
    assert not (sweep / "curves_train_loss_cycle.png").exists()
    chosen = figures["curves_eval_psnr_AB.png"]
    assert chosen["ylabel"] == "eval/psnr_AB"
    first = next(ys for label, _, ys in chosen["lines"] if label.startswith("0:"))
    assert first == [psnr(5, 0, 0) - 1 + step for step in range(3)]
    assert f"plot: {sweep / 'curves_eval_psnr_AB.png'}" in capsys.readouterr().out

    assert main(["--collect", str(sweep), "--plot", "eval/fid_AB"], root=ROOT) == 0
    assert "no curves: no job logged 'eval/fid_AB' in metrics.jsonl" in capsys.readouterr().out


def test_mode_ranks_min_or_max(tmp_path: Path, figures: dict, capsys) -> None:
    sweep = tmp_path / "sweep"
    grid_sweep(sweep)
    means = {
        f"loss.lambda_cyc={c} loss.lambda_id={i}": statistics.mean(psnr(c, i, s) for s in (0, 1))
        for c in CYC
        for i in ID
    }
    assert main(["--collect", str(sweep)], root=ROOT) == 0  # the jobs' optimized_mode: max
    ranked = cells(sweep)
    assert [c["overrides"] for c in ranked] == sorted(means, key=means.get, reverse=True)
    assert "eval/psnr_AB (max)" in ranked[0]
    assert "higher is better" in figures["eval_psnr_AB_vs_loss.lambda_cyc.png"]["ylabel"]

    assert main(["--collect", str(sweep), "--mode", "min"], root=ROOT) == 0
    ranked = cells(sweep)
    assert [c["overrides"] for c in ranked] == sorted(means, key=means.get)
    assert [c["rank"] for c in ranked] == [str(i) for i in range(1, 7)]
    assert float(ranked[0]["eval/psnr_AB (min)"]) == pytest.approx(min(means.values()))
    assert ranked[0]["same as best?"] == "best" and ranked[-1]["same as best?"] == "no"
    assert "lower is better" in figures["eval_psnr_AB_vs_loss.lambda_cyc.png"]["ylabel"]
    assert "ranked by eval/psnr_AB (min)" in capsys.readouterr().out


def test_collect_pools_the_seeds_of_cells_two_sweeps_share(tmp_path: Path, monkeypatch) -> None:
    """The second sweep reruns lambda_cyc=10 lambda_id=5 with new seeds (its overrides written in
    another order: typed in another order) and adds a cell: the shared cell has both's seeds."""
    first, second = tmp_path / "lambda_grid" / "t1", tmp_path / "lambda_grid" / "t2"
    values: dict[str, list[float]] = {}
    for num, (cyc, seed) in enumerate((c, s) for c in (5, 10) for s in (0, 1, 2)):
        value = psnr(cyc, 5, seed)
        values.setdefault(f"loss.lambda_cyc={cyc} loss.lambda_id=5", []).append(value)
        overrides = [f"loss.lambda_cyc={cyc}", "loss.lambda_id=5", f"seed={seed}"]
        write_job(first / str(num), overrides, {"eval/psnr_AB": value}, [])
    for num, (cyc, lid, seed) in enumerate(
        (c, i, s) for c, i in ((10, 5), (40, 0)) for s in (3, 4)
    ):
        value = psnr(cyc, lid, seed) + 0.5  # another run: other numbers
        values.setdefault(f"loss.lambda_cyc={cyc} loss.lambda_id={lid}", []).append(value)
        overrides = [f"seed={seed}", f"loss.lambda_id={lid}", f"loss.lambda_cyc={cyc}"]
        write_job(second / str(num), overrides, {"eval/psnr_AB": value}, [])

    monkeypatch.chdir(tmp_path)
    out = tmp_path / "both"
    assert main(["--collect", str(first), str(second), "--out", str(out)], root=ROOT) == 0
    pooled = {c["overrides"]: c for c in cells(out)}
    assert set(pooled) == set(values)
    shared = pooled["loss.lambda_cyc=10 loss.lambda_id=5"]
    assert (shared["n"], shared["seeds"]) == ("5", "0,1,2,3,4")
    assert shared["jobs"].split() == [
        *(f"lambda_grid-t1/{i}" for i in (3, 4, 5)),
        *(f"lambda_grid-t2/{i}" for i in (0, 1)),
    ]
    assert pooled["loss.lambda_cyc=5 loss.lambda_id=5"]["n"] == "3"
    assert pooled["loss.lambda_cyc=40 loss.lambda_id=0"]["n"] == "2"
    for label, cell in pooled.items():  # mean and sample std over every seed of the cell
        assert float(cell["eval/psnr_AB (max)"]) == pytest.approx(statistics.mean(values[label]))
        assert float(cell["eval/psnr_AB std"]) == pytest.approx(statistics.stdev(values[label]))
    jobs = [r for r in read_csv(out / "comparison.csv") if r["kind"] == "job"]
    assert len(jobs) == 10
