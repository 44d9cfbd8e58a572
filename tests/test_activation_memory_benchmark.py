"""benchmarks/activation_memory.py: both settings run the same step and report their memory."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import activation_memory
import torch
import train_step

from cyclegan.runtime.activation_checkpointing import is_checkpointed


def test_both_settings_do_the_same_math_and_report_memory() -> None:
    off = activation_memory.child("32/1/1", "off", "cpu", 1)
    on = activation_memory.child("32/1/1", "on", "cpu", 1)
    assert (off["setting"], on["setting"]) == ("off", "on")
    assert on["loss_G"] == off["loss_G"]  # checkpointing recomputes, it does not approximate
    for r in (off, on):
        assert r["s/step"] > 0 and r["rss_peak_gib"] > 0 and r["rss_step_gib"] >= 0
        assert r["rss_peak_gib"] >= r["rss_step_gib"]


def test_ckpt_mode_switches_the_residual_blocks() -> None:
    t = train_step.make_trainer(32, 2, 1, torch.device("cpu"), "optimized+ckpt")
    assert sum(is_checkpointed(m) for m in t.model.modules()) == 4  # 2 blocks x 2 generators
    plain = train_step.make_trainer(32, 2, 1, torch.device("cpu"), "optimized")
    assert not any(is_checkpointed(m) for m in plain.model.modules())
