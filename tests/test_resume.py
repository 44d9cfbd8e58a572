"""Exact resume, checkpoint retention, pre-emption by signal, and the NaN guard."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cyclegan.checkpoints.file import CheckpointError, load_checkpoint
from cyclegan.methods.cyclegan import CycleGAN as CycleGANMethod
from cyclegan.training.builder import train
from cyclegan.training.loop import NonFiniteLossError

from .conftest import ROOT, TINY

# 2 epochs x 3 steps; one checkpoint per step, all kept.
EVERY_STEP = [
    *TINY,
    "trainer.checkpoint_unit=step",
    "trainer.checkpoint_every=1",
    "trainer.keep_last=10",
    "trainer.sample_every=0",
]


def train_rows(run: Path) -> dict[int, dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {
        r["step"]: {k: v for k, v in r.items() if k.startswith("train/")}
        for r in rows
        if "train/loss_G" in r
    }


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("n", [2, 3, 4])  # mid-epoch 0, exactly at the epoch boundary, mid-epoch 1
def test_resume_is_bit_exact(n: int, compose_cfg, tmp_path: Path) -> None:
    full = tmp_path / "full"
    train(compose_cfg(*EVERY_STEP, f"paths.output_dir={full}"))
    snapshot = load_checkpoint(full / "checkpoints" / f"step_{n:07d}.pt")
    assert len(snapshot["buffers"]["A"]["images"]) == n  # the replay buffer holds n fakes

    resumed = tmp_path / "resumed"
    train(
        compose_cfg(
            *EVERY_STEP,
            f"paths.output_dir={resumed}",
            f"resume={full / 'checkpoints' / f'step_{n:07d}.pt'}",
        )
    )

    final_full = load_checkpoint(full / "checkpoints" / "last.pt")
    final_resumed = load_checkpoint(resumed / "checkpoints" / "last.pt")
    assert final_resumed["step"] == final_full["step"] == 6
    assert_same_weights(final_full["model"], final_resumed["model"])
    for name in ("G", "D_A", "D_B"):
        sa, sb = final_full["optimizers"][name]["state"], final_resumed["optimizers"][name]["state"]
        assert all(torch.equal(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"]) for i in sa)
    rows_full, rows_resumed = train_rows(full), train_rows(resumed)
    assert sorted(rows_resumed) == list(range(n + 1, 7))
    for step in rows_resumed:
        lhs = {k: v for k, v in rows_full[step].items() if not k.startswith("train/time")}
        rhs = {k: v for k, v in rows_resumed[step].items() if not k.startswith("train/time")}
        assert lhs == rhs, step  # identical logged losses and learning rates


def test_resume_auto_continues_with_a_longer_schedule(compose_cfg, tmp_path: Path) -> None:
    run = tmp_path / "run"
    base = [
        *TINY,
        "trainer.sample_every=0",
        "schedule=constant",
        f"paths.output_dir={run}",
    ]
    train(compose_cfg(*base, "schedule.n_epochs=1"))
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 3
    train(compose_cfg(*base, "schedule.n_epochs=2", "resume=auto"))  # n_epochs may change

    reference = tmp_path / "reference"
    train(compose_cfg(*base, "schedule.n_epochs=2", f"paths.output_dir={reference}"))
    a, b = (
        load_checkpoint(run / "checkpoints" / "last.pt"),
        load_checkpoint(reference / "checkpoints" / "last.pt"),
    )
    assert a["step"] == b["step"] == 6
    assert_same_weights(a["model"], b["model"])


def test_resume_auto_without_checkpoint_starts_fresh(compose_cfg, tmp_path: Path) -> None:
    train(compose_cfg(*TINY, "trainer.sample_every=0", "resume=auto"))
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == 6


def test_resume_with_another_model_names_the_differing_keys(compose_cfg, tmp_path: Path) -> None:
    train(compose_cfg(*TINY, "trainer.sample_every=0"))
    with pytest.raises(CheckpointError) as err:
        train(compose_cfg(*TINY, "model.ngf=16", "resume=auto"))
    assert "model.ngf: 8 -> 16" in str(err.value)
    with pytest.raises(CheckpointError, match=r"model.generator: 'resnet' -> 'paper'"):
        train(
            compose_cfg(
                *TINY,
                "model=paper",
                "model.ngf=8",
                "model.ndf=8",
                "model.n_residual_blocks=1",
                "resume=auto",
            )
        )


def test_retention_keeps_last_k_plus_last_and_best(compose_cfg, tmp_path: Path) -> None:
    train(
        compose_cfg(
            *TINY,
            "trainer.checkpoint_unit=step",
            "trainer.checkpoint_every=1",
            "trainer.keep_last=2",
        )
    )
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert names == ["best.pt", "last.pt", "step_0000005.pt", "step_0000006.pt"]
    best = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert best["best"]["best/psnr_AB"] == summary["best/psnr_AB"]


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(
    compose_cfg, tmp_path: Path, monkeypatch
) -> None:
    real_step = CycleGANMethod.training_step
    steps = iter(range(100))

    def poisoned(self, batch):
        losses = real_step(self, batch)
        if next(steps) == 2:  # the third step: corrupt the weights and the loss
            with torch.no_grad():
                next(self.model.G_AB.parameters()).fill_(float("nan"))
            losses["loss_cycle"] = torch.tensor(float("nan"))
        return losses

    monkeypatch.setattr(CycleGANMethod, "training_step", poisoned)
    with pytest.raises(NonFiniteLossError, match=r"step 3: loss_cycle=nan"):
        train(compose_cfg(*TINY, "trainer.checkpoint_unit=step", "trainer.checkpoint_every=1"))
    last = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert last["step"] == 2
    assert all(torch.isfinite(v).all() for v in last["model"].values() if v.is_floating_point())


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1])
def test_signal_saves_a_checkpoint_and_resume_continues_exactly(
    sig: int, tmp_path: Path, compose_cfg
) -> None:
    run = tmp_path / "run"
    # 8 images -> 8 steps per epoch; constant LR so any stopping point has a reference.
    common = [o for o in TINY if not o.startswith(("trainer.steps_per_epoch", "schedule."))]
    common += [
        "schedule=constant",
        "trainer.sample_every=0",
        "logger=file",
    ]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "train.py"),
            *common,
            "schedule.n_epochs=500",
            f"paths.data_dir={tmp_path / 'data'}",
            f"hydra.run.dir={run}",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    metrics = run / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (
        not metrics.exists() or len(metrics.read_text().splitlines()) < 5
    ):
        time.sleep(0.2)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 3, out[-2000:]
    assert "continue with resume=auto" in out
    stopped = load_checkpoint(run / "checkpoints" / "last.pt")
    k = stopped["step"]
    assert 5 <= k < 4000

    epochs = k // 8 + 1  # finish the epoch it was in
    shutil.copytree(run, tmp_path / "resumed")
    train(
        compose_cfg(
            *common,
            f"schedule.n_epochs={epochs}",
            "resume=auto",
            f"paths.output_dir={tmp_path / 'resumed'}",
        )
    )
    train(
        compose_cfg(
            *common, f"schedule.n_epochs={epochs}", f"paths.output_dir={tmp_path / 'reference'}"
        )
    )
    a = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "reference" / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == 8 * epochs
    assert_same_weights(a["model"], b["model"])


def test_resume_with_a_full_replay_buffer_is_bit_exact(compose_cfg, tmp_path: Path) -> None:
    """A buffer of 2 is full after 2 steps; from then on each fake may be swapped for a stored one
    by the buffer's own RNG, whose state must come back with the checkpoint."""
    small = [*EVERY_STEP, "method.buffer_size=2"]
    full = tmp_path / "full"
    train(compose_cfg(*small, f"paths.output_dir={full}"))
    snapshot = load_checkpoint(full / "checkpoints" / "step_0000004.pt")
    assert len(snapshot["buffers"]["A"]["images"]) == 2  # full, and has been drawing since step 3
    resumed = tmp_path / "resumed"
    train(
        compose_cfg(
            *small,
            f"paths.output_dir={resumed}",
            f"resume={full / 'checkpoints' / 'step_0000004.pt'}",
        )
    )
    a = load_checkpoint(full / "checkpoints" / "last.pt")
    b = load_checkpoint(resumed / "checkpoints" / "last.pt")
    assert_same_weights(a["model"], b["model"])
    for domain in ("A", "B"):
        assert torch.equal(a["buffers"][domain]["images"], b["buffers"][domain]["images"])
    assert torch.equal(a["rng"]["buffer"], b["rng"]["buffer"])


def test_best_checkpoint_follows_optimized_mode_min(compose_cfg, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(
        compose_cfg(
            *TINY,
            "schedule.n_epochs=3",
            "trainer.eval_every=1",
            "trainer.sample_every=0",
            "logger=file",
            "optimized_metric=eval/psnr_AB",
            "optimized_mode=min",
        )
    )
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [(r["step"], r["eval/psnr_AB"]) for r in rows if "eval/psnr_AB" in r]
    assert len(evals) == 3 and len({v for _, v in evals}) == 3
    step, lowest = min(evals, key=lambda e: e[1])
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    assert best["best"]["best/psnr_AB"] == lowest and best["step"] == step
    summary = json.loads((run / "summary.json").read_text())
    assert summary["best/psnr_AB"] == lowest < max(v for _, v in evals)
