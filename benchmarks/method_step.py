"""One training step of CycleGAN, CUT and FastCUT side by side: same run, interleaved, same images.

    python benchmarks/method_step.py                              # CPU: 64 px / 6 blocks / batch 1
    python benchmarks/method_step.py --device cuda --cases 256/9/1,256/9/4 --ngf 64

Each method is its own `training_step` at its default settings (CycleGAN: model=resnet, replay
buffer, identity loss; CUT: model=cut, NCE on 5 layers with 256 patches, identity NCE; FastCUT: no
identity NCE, flips), built at the same widths (ngf = ndf). Steps alternate (A B C A B C ...) so a
machine whose speed drifts affects all alike; times are medians after warm-up. Memory: on CUDA the
step's peak allocation above the resident weights (torch.cuda.max_memory_allocated); on the CPU
(`--rss`) the peak RSS of a fresh process per method over what its imports took: weights, optimizer
states and a step's activations (one process's peak RSS would mix all methods).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from cyclegan.config.compose import compose_config
from cyclegan.methods.base import TrainingMethod
from cyclegan.runtime.strategy import SingleProcess
from cyclegan.training.builder import build_method

CONF = Path(__file__).resolve().parents[1] / "conf"
METHODS = ("cyclegan", "cut", "fastcut")


def make_method(name: str, blocks: int, ngf: int, device: torch.device) -> TrainingMethod:
    """A method at its default settings (method=NAME picks its networks and loss), at this size,
    with a constant learning rate (the schedule does not matter here) and fused Adam."""
    torch.manual_seed(0)
    cfg = compose_config(
        [
            f"method={name}", f"model.n_residual_blocks={blocks}", f"model.ngf={ngf}",
            f"model.ndf={ngf}", "schedule=constant", "optim.fused=true",
        ]
    )  # fmt: skip
    return build_method(cfg, device, SingleProcess())


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def images(size: int, batch: int, device: torch.device) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {k: (torch.rand(batch, 3, size, size, generator=g) * 2 - 1).to(device) for k in "AB"}


def run_case(
    size: int, blocks: int, batch: int, ngf: int, device: torch.device, methods: list[str],
    warmup: int, reps: int,
) -> list[dict]:  # fmt: skip
    batch_ = images(size, batch, device)
    built = {name: make_method(name, blocks, ngf, device) for name in methods}
    times: dict[str, list[float]] = {name: [] for name in methods}
    memory = dict.fromkeys(methods, float("nan"))
    for i in range(warmup + reps):
        for name, method in built.items():  # interleaved
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
                resident = torch.cuda.memory_allocated(device)
            sync(device)
            start = time.perf_counter()
            method.training_step(batch_)
            method.after_step()
            sync(device)
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
            if device.type == "cuda":
                used = (torch.cuda.max_memory_allocated(device) - resident) / 2**30
                memory[name] = max(0.0 if memory[name] != memory[name] else memory[name], used)
    base = statistics.median(times[methods[0]])
    return [
        {
            "case": f"{size}/{blocks}/{batch}",
            "method": name,
            "s/step": statistics.median(times[name]),
            "img/s": batch / statistics.median(times[name]),
            "vs first": base / statistics.median(times[name]),
            "GiB": memory[name],
        }
        for name in methods
    ]


def _status_mib(field: str) -> float:
    """A memory line of /proc/self/status (VmRSS: now, VmHWM: peak), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no {field} in /proc/self/status (Linux only)")


def rss_growth_mib(name: str, size: int, blocks: int, batch: int, ngf: int, steps: int) -> float:
    """Peak RSS of this fresh process over its RSS after the imports, in MiB, after building one
    method and running `steps` steps: its weights, optimizer states and a step's activations.
    The peak is reset first: getrusage's ru_maxrss would include the parent's before the exec."""
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    before = _status_mib("VmRSS")
    method = make_method(name, blocks, ngf, torch.device("cpu"))
    batch_ = images(size, batch, torch.device("cpu"))
    for _ in range(steps):
        method.training_step(batch_)
    return _status_mib("VmHWM") - before


def rss_in_subprocess(name: str, case: str, ngf: int) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--rss-of", name, "--cases", case, "--ngf", str(ngf)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


def print_table(rows: list[dict], memory: str) -> None:
    header = f"{'case':>9s} {'method':>9s} {'s/step':>8s} {'img/s':>7s} {'speed':>7s} {memory:>12s}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['case']:>9s} {r['method']:>9s} {r['s/step']:>8.4f} {r['img/s']:>7.2f} "
            f"{r['vs first']:>6.2f}x {r['GiB']:>12.3f}",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", default="64/6/1", help="img_size/blocks/batch, comma-separated")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--ngf", type=int, default=64, help="ngf = ndf of every method")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rss", action="store_true", help="CPU: peak RSS growth per method")
    parser.add_argument("--rss-of", help=argparse.SUPPRESS)  # the subprocess of --rss
    args = parser.parse_args(argv)
    cases = [tuple(int(v) for v in c.split("/")) for c in args.cases.split(",")]
    if args.rss_of:
        size, blocks, batch = cases[0]
        print(rss_growth_mib(args.rss_of, size, blocks, batch, args.ngf, args.warmup + 1))
        return 0
    device = torch.device(args.device)
    methods = args.methods.split(",")
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise SystemExit(f"unknown method(s) {sorted(unknown)}: use {', '.join(METHODS)}")
    rows = []
    for size, blocks, batch in cases:
        case_rows = run_case(size, blocks, batch, args.ngf, device, methods, args.warmup, args.reps)
        if args.rss and device.type == "cpu":
            for r in case_rows:
                r["GiB"] = rss_in_subprocess(r["method"], r["case"], args.ngf) / 1024
        rows += case_rows
    memory = "step GiB" if device.type == "cuda" else ("peak RSS GiB" if args.rss else "memory")
    print_table(rows, memory)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
