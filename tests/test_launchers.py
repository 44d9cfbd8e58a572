"""The optional plugins for real: joblib and submitit_local launchers each run a 2-job grid, and
a short Optuna search returns the metric train.py reports. Skipped where a plugin is missing."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from .conftest import TINY
from .test_sweep import run_sweep

pytestmark = pytest.mark.slow

COMMON = [*TINY, "trainer.sample_every=0", "logger=file"]


def _rows(sweep: Path) -> list[dict[str, str]]:
    """The job rows of the comparison (one seed per cell here: the cell rows repeat them)."""
    with (sweep / "comparison.csv").open() as f:
        return [row for row in csv.DictReader(f) if row["kind"] == "job"]


@pytest.mark.parametrize(
    ("launcher", "module"),
    [
        (
            ["hydra/launcher=parallel", "hydra.launcher.n_jobs=2"],
            "hydra_plugins.hydra_joblib_launcher",
        ),
        (
            ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"],
            "hydra_plugins.hydra_submitit_launcher",
        ),
    ],
    ids=["joblib", "submitit_local"],
)
def test_launcher_runs_a_2_job_grid(tmp_path: Path, launcher: list[str], module: str) -> None:
    pytest.importorskip(module)
    sweep = tmp_path / "sweep"
    start = time.perf_counter()
    proc = run_sweep(
        [
            "lr_grid",
            "optim.lr=0.0001,0.0002",
            *COMMON,
            *launcher,
            f"paths.data_dir={tmp_path / 'data'}",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=tmp_path,
    )
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = _rows(sweep)
    assert sorted(r["overrides"] for r in rows) == ["optim.lr=0.0001", "optim.lr=0.0002"]
    assert all(r["status"] == "ok" and r["rank"] in ("1", "2") for r in rows)
    for job in ("0", "1"):
        assert json.loads((sweep / job / "summary.json").read_text())["step"] == 6
    print(f"\n{launcher[0]}: 2-job grid in {elapsed:.1f} s")


def test_short_optuna_search_returns_the_metric(tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    sweep = tmp_path / "sweep"
    start = time.perf_counter()
    proc = run_sweep(
        [
            "optuna_search",
            "hydra.sweeper.n_trials=2",
            *COMMON,
            f"paths.data_dir={tmp_path / 'data'}",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=tmp_path,
    )
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    values = [
        json.loads((sweep / job / "summary.json").read_text())["eval/psnr_AB"] for job in "01"
    ]
    best = OmegaConf.load(sweep / "optimization_results.yaml")
    assert best.best_value == pytest.approx(max(values))  # Optuna got what train.py returned
    assert set(best.best_params) == {"loss.lambda_cyc", "loss.lambda_id", "optim.lr"}
    assert len(_rows(sweep)) == 2 and f"Optuna best: {best.best_value}" in proc.stdout
    print(f"\noptuna: 2 trials in {elapsed:.1f} s")
