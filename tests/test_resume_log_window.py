"""The README's resume and NaN-guard claims at the default `trainer.log_every=10`, where a
checkpoint falls inside a log window: the partly summed window is restored exactly (the logged
means of the window that spans the resume equal an uninterrupted run's), and a NaN inside a window
just before a checkpoint stops the run (exit status 1) before anything is saved."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pytest
import torch

from cyclegan.checkpoints.file import load_checkpoint
from cyclegan.methods.cyclegan import CycleGAN as CycleGANMethod
from cyclegan.training.builder import main, train

from .conftest import TINY

# 3 epochs x 8 steps (8 images, batch 1), the default log_every (10: log lines at steps 10 and
# 20) and a checkpoint every 5 steps: steps 5 and 15 are checkpoints inside a log window.
WINDOWED = [
    *(o for o in TINY if not o.startswith(("trainer.log_every", "trainer.steps_per_epoch"))),
    "schedule.n_epochs=3",
    "trainer.checkpoint_unit=step",
    "trainer.checkpoint_every=5",
    "trainer.keep_last=10",
    "trainer.sample_every=0",
    "logger=file",
]


def logged_losses(run: Path) -> dict[int, dict[str, float]]:
    """The train/* values of each log line (the host timings left out), by step."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {
        r["step"]: {k: v for k, v in r.items() if k.startswith("train/")}
        for r in rows
        if "train/loss_G" in r
    }


def test_resume_inside_a_log_window_logs_the_uninterrupted_means(
    compose_cfg, tmp_path: Path
) -> None:
    full = tmp_path / "full"
    cfg = compose_cfg(*WINDOWED, f"paths.output_dir={full}")
    assert cfg.trainer.log_every == 10  # the default, not set by this test
    train(cfg)
    reference = logged_losses(full)
    assert sorted(reference) == [10, 20]
    final = load_checkpoint(full / "checkpoints" / "last.pt")
    assert final["step"] == 24

    for stop, window_steps in ((5, 5), (15, 5)):  # steps 1-5 and 11-15 summed, not yet logged
        saved = load_checkpoint(full / "checkpoints" / f"step_{stop:07d}.pt")
        assert saved["window"]["_count"] == window_steps
        assert saved["window"]["loss_G"] > 0  # a partly summed window, not an empty one
        resumed = tmp_path / f"resumed_{stop}"
        train(
            compose_cfg(
                *WINDOWED,
                f"paths.output_dir={resumed}",
                f"resume={full / 'checkpoints' / f'step_{stop:07d}.pt'}",
            )
        )
        rows = logged_losses(resumed)
        assert sorted(rows) == [s for s in (10, 20) if s > stop]
        for step, losses in rows.items():
            # The mean over all 10 steps of the window, the ones before the resume included:
            # exactly the uninterrupted run's, every loss and the learning rate.
            assert losses == reference[step], (stop, step)
        last = load_checkpoint(resumed / "checkpoints" / "last.pt")
        assert last["step"] == 24
        assert final["model"].keys() == last["model"].keys()
        for key, value in final["model"].items():
            assert torch.equal(value, last["model"][key]), (stop, key)
        summary = json.loads((resumed / "summary.json").read_text())
        expected = json.loads((full / "summary.json").read_text())
        assert summary["final/train/loss_G"] == expected["final/train/loss_G"]


def test_nan_inside_a_log_window_before_a_checkpoint_is_never_saved(
    compose_cfg, tmp_path: Path, monkeypatch, caplog
) -> None:
    """Step 14 turns the weights and a loss into NaN; no log line comes before the checkpoint at
    step 15, so only the check before saving can stop it."""
    real_step = CycleGANMethod.training_step
    calls = iter(range(1, 100))

    def poisoned(self, batch):
        losses = real_step(self, batch)
        if next(calls) == 14:
            with torch.no_grad():
                next(self.model.G_AB.parameters()).fill_(float("nan"))
            losses["loss_cycle"] = torch.tensor(float("nan"))
        return losses

    monkeypatch.setattr(CycleGANMethod, "training_step", poisoned)
    run = tmp_path / "run"
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as stop:
        main(compose_cfg(*WINDOWED))
    assert stop.value.code == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("non-finite loss at step 14: loss_cycle=nan" in e for e in errors), errors

    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert checkpoints == ["last.pt", "step_0000005.pt", "step_0000010.pt"]
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert last["step"] == 10
    assert all(torch.isfinite(v).all() for v in last["model"].values() if v.is_floating_point())
    assert all(math.isfinite(v) for v in last["window"].values())
    rows = logged_losses(run)
    assert sorted(rows) == [10]  # the window holding the NaN was never logged either
    assert all(math.isfinite(v) for v in rows[10].values())
