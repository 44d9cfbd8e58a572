"""Weak scaling of DDP training on the CPU: 1 process vs 2 gloo processes, same batch per process.

    python benchmarks/ddp_scaling.py                              # 64 px, 6 blocks, width 32, batch 1
    python benchmarks/ddp_scaling.py --size 128 --blocks 9 --width 64 --reps 5

Each configuration runs in fresh processes (torch.multiprocessing, gloo on 127.0.0.1): warm-up
steps, then `reps` timed training steps (the CycleGAN method's `training_step` plus the per-step loss
all_reduce), median of rank 0's times, with a barrier before each step so ranks start together.
Rows: one process with 1 thread, one process with all threads, and N processes with 1 thread each
(the fair comparison on a machine with N cores is "1 x N threads" vs "N x 1 thread"). The global
batch is batch x processes; img/s counts the global batch.

It also prints what DDP sends per step: every gradient of G_AB + G_BA, D_A and D_B once (fp32,
4 bytes a parameter, also under autocast), for this case and for the full-size recipe, and the
on-paper ring all-reduce time for 8 GPUs: 2 (N - 1) / N x bytes / bus bandwidth (README).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from cyclegan.config.compose import compose_config
from cyclegan.config.schema import group_defaults
from cyclegan.methods.cyclegan import CycleGAN as Trainer
from cyclegan.methods.cyclegan_networks import CycleGANNetworks
from cyclegan.parts.networks.factory import count_parameters
from cyclegan.runtime.distributed import Place
from cyclegan.runtime.strategy import strategy_for
from cyclegan.training.builder import build_method


def build(args: argparse.Namespace, place: Place, run_dir: str) -> Trainer:
    torch.manual_seed(0)
    cfg = compose_config(
        [
            f"model.n_residual_blocks={args.blocks}", f"model.ngf={args.width}",
            f"model.ndf={args.width}", "schedule.n_epochs=200", "schedule.decay_epoch=100",
        ]
    )  # fmt: skip
    return build_method(cfg, torch.device("cpu"), strategy_for(place))


def worker(rank: int, world: int, threads: int, port: int, args: argparse.Namespace, out: str):
    torch.set_num_threads(threads)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    source = "torchrun" if world > 1 else "single"
    place = Place(rank=rank, local_rank=rank, world_size=world, master_port=port, source=source)
    strategy = strategy_for(place)
    with strategy.session(torch.device("cpu")), tempfile.TemporaryDirectory() as tmp:
        trainer = build(args, place, tmp)
        g = torch.Generator().manual_seed(rank)
        shape = (args.batch, 3, args.size, args.size)
        real_A = torch.rand(shape, generator=g) * 2 - 1
        real_B = torch.rand(shape, generator=g) * 2 - 1
        times = []
        for i in range(args.warmup + args.reps):
            if world > 1:
                dist.barrier()
            start = time.perf_counter()
            strategy.reduce_step(trainer.training_step({"A": real_A, "B": real_B}), None, ())
            if i >= args.warmup:
                times.append(time.perf_counter() - start)
        if rank == 0:
            Path(out).write_text(json.dumps(times))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(world: int, threads: int, args: argparse.Namespace) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "times.json")
        mp.spawn(worker, args=(world, threads, free_port(), args, out), nprocs=world, join=True)
        return statistics.median(json.loads(Path(out).read_text()))


def gradient_bytes(blocks: int, width: int) -> int:
    spec = group_defaults("model", "resnet", n_residual_blocks=blocks, ngf=width, ndf=width)
    model = CycleGANNetworks(spec, 3, 3)
    return 4 * sum(count_parameters(net) for net in (model.G_AB, model.G_BA, model.D_A, model.D_B))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--width", type=int, default=32, help="ngf = ndf")
    parser.add_argument("--batch", type=int, default=1, help="per process")
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--bus-gbs", type=float, default=300.0, help="GB/s, for the on-paper row")
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    print(
        f"case {args.size} px / {args.blocks} blocks / width {args.width} / batch {args.batch} per "
        f"process; torch {torch.__version__}, {cores} CPU cores, gloo",
        flush=True,
    )
    rows = []
    for world, threads in ((1, 1), (1, args.procs), (args.procs, 1)):
        sec = measure(world, threads, args)
        rows.append((world, threads, world * args.batch, sec, world * args.batch / sec))
    base = rows[0][4]
    header = f"{'procs':>5s} {'threads':>7s} {'global batch':>12s} {'s/step':>8s} {'img/s':>7s} {'vs 1x1':>7s}"
    print(header)
    print("-" * len(header))
    for world, threads, batch, sec, ips in rows:
        print(f"{world:>5d} {threads:>7d} {batch:>12d} {sec:>8.3f} {ips:>7.2f} {ips / base:>6.2f}x")
    n = 8
    for label, blocks, width in (
        ("this case", args.blocks, args.width),
        ("full recipe (9 blocks, width 64)", 9, 64),
    ):
        size = gradient_bytes(blocks, width)
        ring = 2 * (n - 1) / n * size / (args.bus_gbs * 1e9)
        print(
            f"gradients all-reduced per step, {label}: {size / 1e6:.1f} MB; on paper, {n} GPUs, "
            f"ring at {args.bus_gbs:.0f} GB/s: {ring * 1e3:.2f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
