"""benchmarks/activation_memory.py: both settings run the same step and report their memory."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import activation_memory


def test_both_settings_do_the_same_math_and_report_memory() -> None:
    off = activation_memory.child("32/1/1", "off", "cpu", 1)
    on = activation_memory.child("32/1/1", "on", "cpu", 1)
    assert (off["setting"], on["setting"]) == ("off", "on")
    assert on["loss_G"] == off["loss_G"]  # checkpointing recomputes, it does not approximate
    for r in (off, on):
        assert r["s/step"] > 0 and r["rss_peak_gib"] > 0 and r["rss_step_gib"] >= 0
        assert r["rss_peak_gib"] >= r["rss_step_gib"]
