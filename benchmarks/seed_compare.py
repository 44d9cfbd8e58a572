"""Our `baseline` mode against PyTorch-GAN's own cyclegan.py, run unmodified, side by side.

    python benchmarks/seed_compare.py /path/to/PyTorch-GAN          # CPU, 64 px, 6 blocks, batch 4
    python benchmarks/seed_compare.py /path/to/PyTorch-GAN --rounds 4 --iters 6 --modes baseline,optimized

`train_step.py` quotes every speed-up against its `baseline` mode, which stands for the seed's
execution; this script checks that it does not run slower than the seed's code itself, which
would overstate every speed-up. PyTorch-GAN is never imported or copied: its
`implementations/cyclegan/cyclegan.py` runs as it is, from a scratch directory, on the built-in
dataset (linked in its `data/<name>/train/A` layout), and its time per iteration is read off its
own progress line, which it writes once per iteration after the step (`\\r[Epoch ...]`). Each of
our modes runs in its own process the same way: real images of the same dataset, the step, then
its losses read back and a progress line, so both sides time one whole iteration of a loop.

The processes alternate (seed, ours, seed, ours, ...), so a machine whose speed drifts affects
both; the first `--warmup` iterations of each process are dropped, the table shows each round's
median and the median over all rounds, and the ratio to the seed's (below 1: faster than the seed).
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATASET = "synthetic_compare"


def seed_script(checkout: Path) -> Path:
    """cyclegan.py of a PyTorch-GAN checkout (its root or the implementation folder)."""
    for candidate in (
        checkout / "implementations" / "cyclegan" / "cyclegan.py",
        checkout / "cyclegan.py",
    ):
        if candidate.is_file():
            return candidate
    raise SystemExit(
        f"no implementations/cyclegan/cyclegan.py under '{checkout}'; pass the root of a "
        "PyTorch-GAN checkout (git clone https://github.com/eriklindernoren/PyTorch-GAN)"
    )


def prepare_data(scratch: Path, size: int) -> Path:
    """The built-in dataset at the size the seed resizes to, linked as <scratch>/data/<name>/.

    The seed reads `../../data/<name>/{train,test}/{A,B}` relative to its working directory, so it
    runs from <scratch>/run/seed, and writes its samples under <scratch>/run/seed/images/.
    """
    from cyclegan.data.synthetic import SyntheticLandscapes

    source = SyntheticLandscapes(64, 8, int(size * 1.12), seed=0).prepare(scratch / "synthetic")
    target = scratch / "data" / DATASET
    for split in ("train", "test"):
        for domain in "AB":
            link = target / split / domain
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to(Path(source) / f"{split}{domain}")
    (scratch / "run" / "seed").mkdir(parents=True, exist_ok=True)
    return Path(source)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process so far, from /proc (Linux; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def iteration_times(
    cmd: list[str], cwd: Path, n: int, env: dict[str, str]
) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of the first n iterations of a process, between its progress lines.

    CPU time is the main process's (the seed's DataLoader workers are other processes); on a
    shared machine it is the steadier of the two, as long as each side computes on one thread.
    """
    proc = subprocess.Popen(
        cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
    )
    assert proc.stdout is not None
    stamps: list[tuple[float, float]] = []
    seen = b""
    try:
        while len(stamps) < n + 1:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                raise SystemExit(f"{' '.join(cmd[:3])} ... ended after {len(stamps)} iterations")
            now = (time.perf_counter(), cpu_seconds(proc.pid))
            seen += chunk
            # Each iteration writes '\r[Epoch ...' in one go after its step: stamp its arrival.
            stamps += [now] * (seen.count(b"\r[Epoch") - len(stamps))
    finally:
        proc.kill()
        proc.wait()
    pairs = list(itertools.pairwise(stamps))[:n]
    return [b[0] - a[0] for a, b in pairs], [b[1] - a[1] for a, b in pairs]


def worker(mode: str, data: Path, size: int, blocks: int, batch: int, steps: int) -> None:
    """Our side: `mode`'s step on real images, then the seed's progress line, `steps` times."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import torch
    from train_step import make_trainer, step_of

    from cyclegan.data.folder import UnpairedImageDataset
    from cyclegan.data.sampling import EpochSampler

    device = torch.device("cpu")
    dataset = UnpairedImageDataset(data, seed=0, cache=True, img_size=size)
    keys = list(EpochSampler(len(dataset), seed=0))[:batch]
    samples = [dataset[key] for key in keys]
    real_A = torch.stack([s["A"] for s in samples]).to(device)
    real_B = torch.stack([s["B"] for s in samples]).to(device)
    trainer = make_trainer(size, blocks, batch, device, mode)
    step = step_of(mode)
    for i in range(steps):
        losses = step(trainer, real_A, real_B)
        values = " ".join(f"{k}: {float(v):f}" for k, v in losses.items())
        sys.stdout.write(f"\r[Epoch 0/1] [Batch {i}/{steps}] [{values}]")
        sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("pytorch_gan", type=Path, nargs="?", help="a PyTorch-GAN checkout")
    parser.add_argument("--modes", default="baseline", help="our modes, comma-separated")
    parser.add_argument("--case", default="64/6/4", help="img_size/blocks/batch")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iters", type=int, default=5, help="timed iterations per process")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first iterations")
    parser.add_argument(
        "--n-cpu", type=int, default=8, help="the seed's --n_cpu (DataLoader workers; its default)"
    )
    parser.add_argument("--scratch", type=Path, default=None, help="work folder (default: temp)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    size, blocks, batch = (int(x) for x in args.case.split("/"))
    if args.worker:
        worker(args.worker, args.data, size, blocks, batch, args.steps)
        return 0
    if args.pytorch_gan is None:
        parser.error("pass the path of a PyTorch-GAN checkout")
    # A SIGTERM ends this script through its `finally` blocks, which kill the running side.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    script = seed_script(args.pytorch_gan.resolve())
    scratch_dir = args.scratch or Path(tempfile.mkdtemp(prefix="seed_compare_"))
    data = prepare_data(scratch_dir.resolve(), size)
    n = args.warmup + args.iters
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    # The seed runs on the CPU like ours (it picks CUDA whenever it sees one).
    env["CUDA_VISIBLE_DEVICES"] = ""
    # Enough epochs that the timed iterations never reach an epoch's end; one sample grid at
    # iteration 0 (the seed's `batches_done % sample_interval == 0`), inside the warm-up.
    seed_cmd = [
        sys.executable, str(script), "--dataset_name", DATASET, "--batch_size", str(batch),
        "--img_height", str(size), "--img_width", str(size), "--n_residual_blocks", str(blocks),
        "--n_epochs", "200", "--sample_interval", "1000000", "--n_cpu", str(args.n_cpu),
    ]  # fmt: skip
    sides = {"seed": (seed_cmd, scratch_dir / "run" / "seed")}
    for mode in args.modes.split(","):
        cmd = [
            sys.executable, str(Path(__file__).resolve()), "--worker", mode, "--data", str(data),
            "--case", args.case, "--steps", str(n + 2),
        ]  # fmt: skip
        sides[mode] = (cmd, ROOT)
    wall: dict[str, list[float]] = {name: [] for name in sides}
    cpu: dict[str, list[float]] = {name: [] for name in sides}
    threads = env.get("OMP_NUM_THREADS", "torch's default")
    print(f"case {args.case} (img_size/blocks/batch), CPU, {os.cpu_count()} cores, "
          f"OMP_NUM_THREADS={threads}; median s/iteration, wall (cpu)")  # fmt: skip
    print(f"{'round':>6s} " + " ".join(f"{name:>18s}" for name in sides), flush=True)
    for r in range(args.rounds):
        for name, (cmd, cwd) in sides.items():  # alternating: seed, ours, seed, ours, ...
            w, c = iteration_times(cmd, cwd, n, env)
            wall[name].append(statistics.median(w[args.warmup :]))
            cpu[name].append(statistics.median(c[args.warmup :]))
        print(
            f"{r + 1:>6d} " + " ".join(f"{wall[k][-1]:>9.3f} ({cpu[k][-1]:>6.3f})" for k in sides),
            flush=True,
        )
    mw = {k: statistics.median(v) for k, v in wall.items()}
    mc = {k: statistics.median(v) for k, v in cpu.items()}
    print(f"{'median':>6s} " + " ".join(f"{mw[k]:>9.3f} ({mc[k]:>6.3f})" for k in sides))
    print(
        f"{'ratio':>6s} "
        + " ".join(f"{mw[k] / mw['seed']:>8.3f}x ({mc[k] / mc['seed']:>5.3f}x)" for k in sides)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
