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

from cyclegan.errors import ConfigError
from cyclegan.parts.replay_buffer import DeviceReplayBuffer

PEAKS = {"fp32": 100.0, "tf32": 200.0, "bf16": 400.0}


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
    assert optimized["MFU tf32"] == pytest.approx(optimized["GFLOP/s"] / 200.0)
    assert optimized["MFU bf16"] == pytest.approx(optimized["GFLOP/s"] / 400.0)
    assert optimized["speed-up"] == pytest.approx(baseline["s/step"] / optimized["s/step"])


def test_mode_knobs_reach_the_trainer_and_typos_are_refused() -> None:
    t = train_step.make_trainer(32, 1, 1, torch.device("cpu"), "optimized+bf16+cl")
    assert t.precision.dtype == torch.bfloat16 and t.memory_format == torch.channels_last
    with pytest.raises(SystemExit, match=r"unknown mode option.*'fast'"):
        train_step.make_trainer(32, 1, 1, torch.device("cpu"), "optimized+fast")


def test_device_buffer_mode_does_the_same_math_without_host_reads() -> None:
    rows = train_step.run_case(
        32, 1, 2, torch.device("cpu"), ["baseline", "optimized", "optimized+devbuf"], 0, 1, PEAKS
    )
    assert rows[2]["mode"] == "optimized+devbuf" and rows[2]["loss gap"] < 1e-5
    t = train_step.make_trainer(32, 1, 2, torch.device("cpu"), "optimized+devbuf")
    assert isinstance(t.buffer_A, DeviceReplayBuffer)


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("optimized+graphs+fp16", "cannot be combined"),
        ("optimized+compile+max", "choose one of"),
        ("optimized+baseline", "unknown mode option"),
    ],
)
def test_impossible_modes_are_refused(mode: str, message: str) -> None:
    with pytest.raises(SystemExit, match=message):
        train_step.parse_mode(mode)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on CPU-only machines")
def test_graphs_mode_needs_cuda() -> None:
    with pytest.raises(ConfigError, match=r"trainer\.cuda_graphs=false"):
        train_step.make_trainer(32, 1, 1, torch.device("cpu"), "optimized+graphs")


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

    fastcut = method_step.make_method("fastcut", 5, 4, torch.device("cpu"))
    assert fastcut.criterion.lambda_NCE == 10.0 and fastcut.flip_equivariance is True
    assert fastcut.nce.num_patches == 256  # CUT's, inherited
    rows = method_step.run_case(
        64, 5, 1, 4, torch.device("cpu"), ["cyclegan", "cut", "fastcut"], 0, 1
    )
    assert [r["method"] for r in rows] == ["cyclegan", "cut", "fastcut"]
    assert rows[0]["vs first"] == 1.0
    for r in rows:
        assert r["img/s"] == pytest.approx(1 / r["s/step"])


def test_seed_compare_times_iterations_from_progress_records(tmp_path: Path) -> None:
    """Iterations are timed between the '\\r[Epoch' records a loop writes, as the seed's does."""
    import seed_compare

    loop = (
        "import sys, time\n"
        "for i in range(6):\n"
        "    t = time.perf_counter()\n"
        "    while time.perf_counter() - t < 0.05 * (i + 1): pass\n"  # busy: CPU time too
        "    sys.stdout.write(f'\\r[Epoch 0/1] [Batch {i}/6]'); sys.stdout.flush()\n"
    )
    wall, cpu = seed_compare.iteration_times([sys.executable, "-c", loop], tmp_path, 3, {})
    assert len(wall) == len(cpu) == 3
    # Each iteration lasts at least its busy time; a loaded machine may only add to it.
    assert all(t - 0.02 <= w <= t + 0.3 for w, t in zip(wall, [0.10, 0.15, 0.20], strict=True))
    assert all(0.0 <= c <= w + 0.03 for c, w in zip(cpu, wall, strict=True))
    with pytest.raises(SystemExit, match="pass the root of a PyTorch-GAN checkout"):
        seed_compare.seed_script(tmp_path)
