"""sweep.py: a grid run end to end (a ranked table, files, a plot, one W&B group), a failed job,
and the comparison logic on hand-made job directories."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf
from PIL import Image

from cyclegan.run_identity import sweep_group
from cyclegan.sweep import find_jobs, main, rank_jobs, report

from .conftest import ROOT, TINY
from .wandb_files import offline_runs, read_wandb_run


def run_sweep(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    # One thread per job: these tests check orchestration, and on a shared CPU extra threads of
    # each job only wait on each other.
    env = {
        **os.environ,
        "HYDRA_FULL_ERROR": "0",
        "PYTHONWARNINGS": "ignore",
        "OMP_NUM_THREADS": "1",
    }
    return subprocess.run(
        [sys.executable, str(ROOT / "sweep.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_2x2_grid_ranked_table_and_one_wandb_group(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = run_sweep(
        [
            "lambda_grid",
            "loss.lambda_cyc=5,10",  # a key given on the command line replaces the grid's values
            "loss.lambda_id=0,5",
            *TINY,
            "trainer.sample_every=3",
            "logger.mode=offline",
            f"paths.data_dir={tmp_path / 'data'}",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    # The table: 4 ranked rows, best PSNR first, each the job's own summary.json value.
    rows = read_csv(sweep / "comparison.csv")
    assert [r["rank"] for r in rows] == ["1", "2", "3", "4"]
    psnr = [float(r["eval/psnr_AB (max)"]) for r in rows]
    assert psnr == sorted(psnr, reverse=True)
    for row in rows:
        summary = json.loads((sweep / row["job"] / "summary.json").read_text())
        assert float(row["eval/psnr_AB (max)"]) == pytest.approx(summary["eval/psnr_AB"])
        assert float(row["final/train/loss_cycle"]) == pytest.approx(
            summary["final/train/loss_cycle"]
        )
        assert row["status"] == "ok"
    assert sorted(r["overrides"] for r in rows) == [
        "loss.lambda_cyc=10 loss.lambda_id=0",
        "loss.lambda_cyc=10 loss.lambda_id=5",
        "loss.lambda_cyc=5 loss.lambda_id=0",
        "loss.lambda_cyc=5 loss.lambda_id=5",
    ]
    assert (sweep / "comparison.md").read_text().count("\n") == 2 + 4
    with Image.open(sweep / "curves_train_loss_cycle.png") as plot:
        assert plot.size[0] > 400
    assert "4 jobs in" in proc.stdout and "ranked by eval/psnr_AB (max); 0 failed" in proc.stdout

    # W&B: four distinct runs in one group named after the sweep, each named by its overrides.
    group = sweep_group(sweep)
    assert f"W&B: 4 runs in group '{group}'" in proc.stdout
    runs = [read_wandb_run(p) for job in sorted(sweep.glob("[0-9]")) for p in offline_runs(job)]
    assert len(runs) == 4
    assert {wb.run["run_group"] for wb in runs} == {group}
    assert len({wb.run["run_id"] for wb in runs}) == 4
    assert {wb.run["display_name"] for wb in runs} == {
        f"loss.lambda_cyc={c},loss.lambda_id={i}" for c in (5, 10) for i in (0, 5)
    }
    assert all("multirun" in wb.run["tags"] and wb.summary["state"] == "finished" for wb in runs)
    assert {wb.config["loss"]["lambda_cyc"] for wb in runs} == {5.0, 10.0}


def test_failed_job_is_shown_failed_and_the_others_still_count(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = run_sweep(
        [
            "lr_grid",
            "optim.lr=-1,2e-4",  # the first job fails; the second must still run
            *TINY,
            "trainer.sample_every=0",
            "logger=none",
            f"paths.data_dir={tmp_path / 'data'}",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    rows = read_csv(sweep / "comparison.csv")
    assert [(r["rank"], r["overrides"]) for r in rows] == [
        ("1", "optim.lr=0.0002"),  # Hydra writes the swept values normalised
        ("-", "optim.lr=-1"),
    ]
    assert rows[0]["status"] == "ok" and float(rows[0]["eval/psnr_AB (max)"]) > 0
    assert rows[1]["status"] == "failed: optim.lr=-1.0: must be > 0"
    assert "1 failed" in proc.stdout


# ---------------------------------------------------------------------------- without training


def make_job(
    sweep: Path,
    num: int,
    overrides: list[str],
    summary: dict[str, Any] | None,
    curve: list[float] = (),  # type: ignore[assignment]
    error: str = "",
    optimized_mode: str = "max",
) -> None:
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(overrides), job / ".hydra" / "overrides.yaml")
    config = {"optimized_metric": "eval/psnr_AB", "optimized_mode": optimized_mode}
    OmegaConf.save(OmegaConf.create(config), job / ".hydra" / "config.yaml")
    if summary is not None:
        (job / "summary.json").write_text(json.dumps(summary))
    lines = [
        json.dumps({"step": i + 1, "epoch": 0, "train/loss_cycle": v}) for i, v in enumerate(curve)
    ]
    (job / "metrics.jsonl").write_text("".join(line + "\n" for line in lines))
    if error:
        (job / "train.log").write_text(
            f"[2026-11-26 16:30:00,000][cyclegan.run][INFO] - starting\n"
            f"[2026-11-26 16:30:01,000][cyclegan.run][ERROR] - {error}\n"
        )


def test_ranking_failed_last_and_labels_show_what_varies(tmp_path: Path, capsys) -> None:
    sweep = tmp_path / "sweep"
    fixed = ["dataset.img_size=32", "+experiment/sweeps=lr_grid"]
    make_job(sweep, 0, ["optim.lr=1e-4", *fixed], {"eval/psnr_AB": 20.0}, [1.0, 0.8])
    make_job(sweep, 1, ["optim.lr=2e-4", *fixed], {"eval/psnr_AB": 22.5}, [1.0, 0.6])
    make_job(sweep, 2, ["optim.lr=9", *fixed], None, [1.0], error="non-finite loss_G")
    make_job(sweep, 10, ["optim.lr=4e-4", *fixed], {"eval/psnr_AB": 21.0}, [0.9, 0.7])

    assert report(sweep, metric=None, mode=None, plot="train/loss_cycle") == 1  # a job failed
    rows = read_csv(sweep / "comparison.csv")
    assert [(r["rank"], r["job"], r["overrides"]) for r in rows] == [
        ("1", "1", "optim.lr=2e-4"),
        ("2", "10", "optim.lr=4e-4"),
        ("3", "0", "optim.lr=1e-4"),
        ("-", "2", "optim.lr=9"),
    ]
    assert rows[-1]["status"] == "failed: non-finite loss_G"
    printed = capsys.readouterr().out
    assert "4 jobs in" in printed and "1 failed" in printed and "plot:" in printed
    assert (sweep / "curves_train_loss_cycle.png").stat().st_size > 0
    assert "W&B" not in printed  # these jobs have no W&B runs


def test_lower_is_better_metrics_rank_ascending(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    make_job(sweep, 0, ["seed=0"], {"eval/fid_AB": 40.0, "eval/psnr_AB": 25.0})
    make_job(sweep, 1, ["seed=1"], {"eval/fid_AB": 30.0, "eval/psnr_AB": 20.0})
    jobs = find_jobs(sweep)
    assert [j.name for j in rank_jobs(jobs, "eval/fid_AB", "min")] == ["1", "0"]
    assert [j.name for j in rank_jobs(jobs, "eval/psnr_AB", "max")] == ["0", "1"]
    assert report(sweep, metric="eval/fid_AB", mode=None, plot="train/loss_cycle") == 0
    assert read_csv(sweep / "comparison.csv")[0]["eval/fid_AB (min)"] == "30.0"


def test_list_shows_every_grid(capsys) -> None:
    assert main(["--list"], root=ROOT) == 0
    out = capsys.readouterr().out
    assert "lambda_grid" in out and "6 runs: loss.lambda_cyc=5,10,20 x loss.lambda_id=0,5" in out
    assert "depth_grid" in out and "lr_grid" in out and "optuna_search" in out


def test_unknown_grid_names_the_known_ones(capsys) -> None:
    assert main(["lamda_grid"], root=ROOT) == 2
    err = capsys.readouterr().err
    assert "no grid 'lamda_grid'" in err and "lambda_grid" in err


def test_collect_of_an_empty_directory_is_an_error(tmp_path: Path, capsys) -> None:
    assert main(["--collect", str(tmp_path)], root=ROOT) == 2
    assert "no jobs in" in capsys.readouterr().err
