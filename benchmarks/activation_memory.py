"""Peak memory and time of a training step with and without activation checkpointing.

    python benchmarks/activation_memory.py                        # CPU, 256 px / 9 blocks / batch 1
    python benchmarks/activation_memory.py --device cuda --cases 256/9/1,256/9/4

Each measurement runs the default training step (`benchmarks/train_step.py`'s `optimized` and
`optimized+ckpt` modes, paper widths ngf = ndf = 64) in a fresh child process, alternating the two settings (off on off
on ...), so each peak is that setting's own and a drifting machine affects both alike:
- CPU: the step's peak resident memory, VmHWM (the process's RSS high-water mark) minus the RSS
  after the model, optimizer and batch exist; it includes the gradients and Adam's moments that
  the first step allocates, which are the same in both settings.
- CUDA: `torch.cuda.max_memory_allocated` minus what is allocated before the step (the
  allocator's own count, not the cache it reserves).
Times are medians over the timed steps (after one warm-up step per child).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
SETTINGS = ("off", "on")


def _status_kib(field: str) -> int:
    """A memory figure of this process from /proc/self/status (Linux), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}; this benchmark needs Linux")


def child(case: str, setting: str, device_name: str, steps: int) -> dict:
    """One setting in this process: build, one warm-up step, `steps` timed steps, the peak."""
    sys.path.insert(0, str(HERE))
    from train_step import make_trainer, step_of  # the default step, as train_step.py runs it

    size, blocks, batch = (int(x) for x in case.split("/"))
    device = torch.device(device_name)
    mode = "optimized+ckpt" if setting == "on" else "optimized"
    trainer = make_trainer(size, blocks, batch, device, mode)
    g = torch.Generator().manual_seed(1)
    a = (torch.rand(batch, 3, size, size, generator=g) * 2 - 1).to(device)
    b = (torch.rand(batch, 3, size, size, generator=g) * 2 - 1).to(device)
    step = step_of("optimized")
    resident_kib = _status_kib("VmRSS")
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
        allocated = torch.cuda.memory_allocated(device)
    times = []
    losses = {}
    for i in range(1 + steps):
        start = time.perf_counter()
        out = step(trainer, a, b)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i == 0:
            losses = {k: float(v) for k, v in out.items()}
        else:
            times.append(time.perf_counter() - start)
    result = {
        "setting": setting,
        "case": case,
        "s/step": statistics.median(times),
        "rss_step_gib": (_status_kib("VmHWM") - resident_kib) / 2**20,
        "rss_peak_gib": _status_kib("VmHWM") / 2**20,
        "loss_G": losses.get("loss_G", float("nan")),
    }
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) - allocated
        result["cuda_step_gib"] = peak / 2**30
    return result


def run_child(case: str, setting: str, device: str, steps: int) -> dict:
    cmd = [sys.executable, __file__, "--child", setting, "--cases", case, "--device", device]
    cmd += ["--steps", str(steps)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=os.environ.copy())
    if done.returncode != 0:
        raise SystemExit(f"child {setting} {case} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(case: str, device: str, steps: int, reps: int) -> list[dict]:
    runs: dict[str, list[dict]] = {s: [] for s in SETTINGS}
    for _ in range(reps):
        for setting in SETTINGS:  # alternating: off on off on ...
            runs[setting].append(run_child(case, setting, device, steps))
    rows = []
    for setting in SETTINGS:
        rs = runs[setting]
        row = {
            "case": case,
            "setting": setting,
            "s/step": statistics.median(r["s/step"] for r in rs),
            "step GiB": statistics.median(r.get("cuda_step_gib", r["rss_step_gib"]) for r in rs),
            "peak GiB": statistics.median(r["rss_peak_gib"] for r in rs),
            "loss_G": rs[0]["loss_G"],
        }
        rows.append(row)
    off, on = rows
    on["saving"] = 1 - on["step GiB"] / off["step GiB"]
    on["time cost"] = on["s/step"] / off["s/step"] - 1
    on["loss gap"] = abs(on["loss_G"] - off["loss_G"])
    return rows


def print_rows(rows: list[dict], device: str) -> None:
    what = "allocator" if device.startswith("cuda") else "RSS"
    header = (
        f"{'case':>9s} {'ckpt':>4s} {'s/step':>8s} {'step GiB':>8s} {'peak RSS':>8s} "
        f"{'saving':>7s} {'time':>7s} {'loss gap':>8s}"
    )
    print(f"step memory from the {what}; peak RSS is the whole process")
    print(header)
    print("-" * len(header))
    for r in rows:
        extra = (
            f" {r['saving']:>7.0%} {r['time cost']:>+7.0%} {r['loss gap']:>8.1e}"
            if "saving" in r
            else f" {'':>7s} {'':>7s} {'':>8s}"
        )
        print(
            f"{r['case']:>9s} {r['setting']:>4s} {r['s/step']:>8.2f} {r['step GiB']:>8.2f} "
            f"{r['peak GiB']:>8.2f}" + extra,
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", default="256/9/1", help="img_size/blocks/batch, comma-separated")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=1, help="timed steps per child")
    parser.add_argument("--reps", type=int, default=1, help="children per setting")
    parser.add_argument("--child", choices=SETTINGS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.cases, args.child, args.device, args.steps)))
        return 0
    threads = torch.get_num_threads()
    print(f"device {args.device} ({threads} CPU threads), torch {torch.__version__}", flush=True)
    for case in args.cases.split(","):
        print_rows(measure(case, args.device, args.steps, args.reps), args.device)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
