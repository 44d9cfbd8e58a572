"""End to end: a few-step training run writes every output; `-m` multirun; CLI errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from cyclegan.checkpoints.file import load_checkpoint
from cyclegan.training.builder import train

from .conftest import ROOT, TINY


def test_few_step_run_writes_every_output(compose_cfg, tmp_path: Path) -> None:
    cfg = compose_cfg(*TINY)
    result = train(cfg)
    run = tmp_path / "run"

    summary = json.loads((run / "summary.json").read_text())
    assert summary["step"] == 6 and summary["epoch"] == 2
    assert result == summary["eval/psnr_AB"]
    for key in (
        "eval/psnr_AB",
        "eval/ssim_AB",
        "eval/psnr_BA",
        "eval/ssim_BA",
        "baseline/identity/psnr_AB",
        "baseline/mean/ssim_BA",
    ):
        assert isinstance(summary[key], float)

    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if "train/loss_G" in r]
    assert [r["step"] for r in train_rows] == [1, 2, 3, 4, 5, 6]
    assert [r["epoch"] for r in train_rows] == [0, 0, 0, 1, 1, 1]
    assert {"train/loss_cycle", "train/loss_D_A", "train/lr", "time/step_s"} <= set(train_rows[0])
    assert train_rows[0]["train/lr"] == pytest.approx(2e-4)
    # Linear decay from epoch 0 to zero at epoch 2, stepped per step: step 6 trains at 1/6.
    assert train_rows[-1]["train/lr"] == pytest.approx(2e-4 / 6)
    assert any("eval/psnr_AB" in r for r in rows)

    samples = sorted((run / "samples").glob("*.png"))
    assert [p.name for p in samples] == ["step_0000002.png", "step_0000004.png", "step_0000006.png"]
    with Image.open(samples[0]) as grid:  # 4 rows (real A, fake B, real B, fake A) of 2 images
        assert grid.size == (2 + 2 * 34, 2 + 4 * 34)

    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert state["step"] == 6 and state["epoch"] == 2
    assert set(state["optimizers"]) == {"G", "D_A", "D_B"} == set(state["schedulers"])
    assert state["config"]["model"]["ngf"] == 8
    assert any(k.startswith("G_AB.") for k in state["model"])

    data = tmp_path / "data" / "synthetic-32px-seed0"
    assert len(list((data / "trainA").glob("*.png"))) == 8


def test_same_seed_same_result(compose_cfg, tmp_path: Path) -> None:
    first = train(compose_cfg(*TINY, "trainer.sample_every=0"))
    weights = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["model"]
    second = train(
        compose_cfg(*TINY, "trainer.sample_every=0", f"paths.output_dir={tmp_path / 'run2'}")
    )
    weights2 = load_checkpoint(tmp_path / "run2" / "checkpoints" / "last.pt")["model"]
    assert first == second
    assert all(torch.equal(weights[k], weights2[k]) for k in weights)


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_multirun_two_jobs(tmp_path: Path) -> None:
    sweep = tmp_path / "multi"
    proc = run_cli(
        [
            "-m",
            *TINY,
            "trainer.sample_every=0",
            f"paths.data_dir={tmp_path / 'data'}",
            f"hydra.sweep.dir={sweep}",
            "loss.lambda_cyc=5,10",
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    for job, lam in (("0", 5.0), ("1", 10.0)):
        summary = json.loads((sweep / job / "summary.json").read_text())
        assert summary["step"] == 6
        overrides = (sweep / job / ".hydra" / "overrides.yaml").read_text()
        assert f"loss.lambda_cyc={lam:g}" in overrides
        assert (sweep / job / "checkpoints" / "last.pt").exists()
        assert (sweep / job / "metrics.jsonl").exists()


def test_cli_invalid_value_is_one_line_error(tmp_path: Path) -> None:
    proc = run_cli(
        ["schedule.n_epochs=5", "schedule.decay_epoch=5", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    # train.py's preflight: one line on stderr, before Hydra starts
    errors = [line for line in (proc.stdout + proc.stderr).splitlines() if "error" in line.lower()]
    assert errors == [
        "error: schedule.decay_epoch=5 must be < schedule.n_epochs=5 (decay starts before the last "
        "epoch); lower decay_epoch or raise n_epochs"
    ]
    assert "Traceback" not in proc.stderr


def test_cli_missing_dataset_names_the_download_command(tmp_path: Path) -> None:
    proc = run_cli(
        ["dataset=horse2zebra", f"paths.data_dir={tmp_path}", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "python -m cyclegan.data.download horse2zebra" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
