"""Where the time of one optimized training step goes, and how fast its convolutions can run.

    python benchmarks/profile_step.py                     # 128 px / 9 blocks / batch 1, CPU
    python benchmarks/profile_step.py --case 64/6/4 --top 15

Part 1 profiles one step (after warm-up) with torch.profiler and sums the operators' own time into
groups (convolution forward, convolution backward, instance norm, padding, activations, optimizer,
the rest). Part 2 times the step's dominant convolution (a residual block's 3x3, 256 -> 256
channels) on its own: forward, gradient w.r.t. the input and w.r.t. the weight, each as GFLOP/s
beside the best large matmul of the same run. Together they show the ceiling of the step: if the
convolutions take most of the time and their backward runs below the matmul rate, no change
around them can make the step much faster.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile
from train_step import gemm_peak_gflops, make_trainer  # the script's own folder

GROUPS = {
    "conv forward": ("aten::mkldnn_convolution", "aten::cudnn_convolution", "aten::_convolution"),
    "conv backward": ("aten::convolution_backward",),
    "instance norm": ("batch_norm", "instance_norm"),
    "reflection pad": ("reflection_pad",),
    "relu/tanh/upsample": ("threshold", "relu", "clamp", "tanh", "upsample", "leaky_relu"),
    "optimizer": ("adam", "Optimizer."),
    "copies/cat/split": ("copy_", "cat", "CopySlices", "split", "fill_", "zero_"),
}


def group_of(name: str) -> str:
    for group, keys in GROUPS.items():
        if any(k.lower() in name.lower() for k in keys):
            return group
    return "other"


def profile_step(size: int, blocks: int, batch: int, top: int) -> None:
    trainer = make_trainer(size, blocks, batch, torch.device("cpu"))
    g = torch.Generator().manual_seed(1)
    a = torch.rand(batch, 3, size, size, generator=g) * 2 - 1
    b = torch.rand(batch, 3, size, size, generator=g) * 2 - 1
    for _ in range(2):
        trainer.training_step({"A": a, "B": b})
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        trainer.training_step({"A": a, "B": b})
        wall = time.perf_counter() - start
    events = prof.key_averages()
    self_ms: dict[str, float] = defaultdict(float)
    for e in events:
        self_ms[group_of(e.key)] += e.self_cpu_time_total / 1e3
    total = sum(self_ms.values())
    print(f"one step at {size}/{blocks}/{batch}: {wall:.2f} s wall, {total / 1e3:.2f} s profiled")
    print(f"{'group':>20s} {'self ms':>9s} {'share':>6s}")
    for group, ms in sorted(self_ms.items(), key=lambda kv: -kv[1]):
        print(f"{group:>20s} {ms:9.1f} {ms / total:6.1%}")
    print(f"\ntop {top} operators by own time:")
    print(events.table(sort_by="self_cpu_time_total", row_limit=top, max_name_column_width=40))


def best_time(fn: Callable[[], object], reps: int = 5) -> float:
    fn()
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def conv_ceiling(size: int, batch: int, peak: float) -> None:
    """The residual-block convolution alone: forward, grad-input and grad-weight rates."""
    side = size // 4  # after the two stride-2 downsamplings
    x = torch.randn(batch, 256, side + 2, side + 2)  # reflection-padded input
    w = torch.randn(256, 256, 3, 3)
    grad_out = torch.randn(batch, 256, side, side)
    gflop = 2 * 256 * 256 * 9 * side * side * batch / 1e9

    def backward(mask: list[bool]) -> Callable[[], object]:
        return lambda: torch.ops.aten.convolution_backward(
            grad_out, x, w, [256], [1, 1], [0, 0], [1, 1], False, [0, 0], 1, mask
        )

    rates = {
        "forward": gflop / best_time(lambda: torch.nn.functional.conv2d(x, w)),
        "grad input": gflop / best_time(backward([True, False, False])),
        "grad weight": gflop / best_time(backward([False, True, True])),
        "both grads (one call)": 2 * gflop / best_time(backward([True, True, True])),
    }
    print(f"\nresidual-block conv 3x3 256->256 on {batch}x256x{side}x{side}: {gflop:.2f} GFLOP")
    print(f"{'part':>22s} {'GFLOP/s':>8s} {'of peak':>8s}")
    for part, rate in rates.items():
        print(f"{part:>22s} {rate:8.1f} {rate / peak:8.0%}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--case", default="128/9/1", help="img_size/blocks/batch")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args(argv)
    size, blocks, batch = (int(x) for x in args.case.split("/"))
    print(f"cpu, {torch.get_num_threads()} threads, torch {torch.__version__}")
    profile_step(size, blocks, batch, args.top)
    peak = gemm_peak_gflops(torch.device("cpu"), torch.float32)
    print(f"\nfp32 matmul peak (best 2048^3): {peak:.1f} GFLOP/s")
    # The step calls the generators on 3, 2 and 1 images per sample (batched passes).
    for n in (batch, 3 * batch):
        conv_ceiling(size, n, peak)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
