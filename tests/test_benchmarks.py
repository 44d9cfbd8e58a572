"""The speed benchmarks measure what they claim: same math in every mode, FLOPs that differ only
by the work the optimized step skips, and a profile that sorts operators into the right groups."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import profile_step
import train_step

PEAKS = {"fp32": 100.0, "bf16": 100.0, "fp16": 100.0}


def test_baseline_and_optimized_modes_do_the_same_math() -> None:
    rows = train_step.run_case(
        32, 1, 2, torch.device("cpu"), ["baseline", "optimized"], 0, 1, PEAKS
    )
    baseline, optimized = rows
    assert [r["mode"] for r in rows] == ["baseline", "optimized"]
    assert optimized["loss gap"] < 1e-5  # losses after one step from the same weights
    assert baseline["speed-up"] == 1.0
    # The optimized step skips the discriminators' weight gradients in the generator update:
    # fewer FLOPs, but only by a little (the generators dominate).
    assert 0 < baseline["GFLOP/step"] - optimized["GFLOP/step"] < 0.05 * baseline["GFLOP/step"]
    assert optimized["img/s"] == pytest.approx(2 / optimized["s/step"])
    assert optimized["of peak"] == pytest.approx(optimized["GFLOP/s"] / 100.0)


def test_mode_knobs_reach_the_trainer_and_typos_are_refused() -> None:
    t = train_step.make_trainer(32, 1, 1, torch.device("cpu"), "optimized+bf16+cl")
    assert t.precision.dtype == torch.bfloat16 and t.memory_format == torch.channels_last
    with pytest.raises(SystemExit, match=r"unknown mode option.*'fast'"):
        train_step.make_trainer(32, 1, 1, torch.device("cpu"), "optimized+fast")


@pytest.mark.parametrize(
    ("op", "group"),
    [
        ("aten::convolution_backward", "conv backward"),
        ("aten::mkldnn_convolution", "conv forward"),
        ("aten::native_batch_norm_backward", "instance norm"),
        ("aten::reflection_pad2d", "reflection pad"),
        ("aten::_fused_adam_", "optimizer"),
        ("aten::threshold_backward", "relu/tanh/upsample"),
        ("aten::mse_loss", "other"),
    ],
)
def test_profile_groups(op: str, group: str) -> None:
    assert profile_step.group_of(op) == group


def test_method_benchmark_runs_each_method_at_its_defaults() -> None:
    import method_step

    assert method_step.method_knobs("fastcut")["lambda_NCE"] == 10.0
    assert method_step.method_knobs("fastcut")["num_patches"] == 256  # CUT's, inherited
    rows = method_step.run_case(
        64, 5, 1, 4, torch.device("cpu"), ["cyclegan", "cut", "fastcut"], 0, 1
    )
    assert [r["method"] for r in rows] == ["cyclegan", "cut", "fastcut"]
    assert rows[0]["vs first"] == 1.0
    for r in rows:
        assert r["img/s"] == pytest.approx(1 / r["s/step"])
    assert isinstance(
        method_step.make_method("fastcut", 5, 4, torch.device("cpu")).criterion.flip_equivariance,
        bool,
    )
