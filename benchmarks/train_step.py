"""Speed of one CycleGAN training step: the naive execution vs ours, interleaved, beside the GEMM peak.

    python benchmarks/train_step.py                       # 128 px / 9 blocks / batch 1 and 64 / 6 / 4
    python benchmarks/train_step.py --cases 256/9/1 --reps 5 --device cuda

Both modes do the same math from the same weights and batch (checked: their losses after one step
agree to ~1e-5). `baseline` mirrors the seed's execution: eager fp32, every generator and
discriminator call separate, discriminator weight gradients computed (then discarded) during the
generator update, gradients zeroed in place, Adam's per-parameter loop. `optimized` is
`cyclegan.trainer.Trainer.training_step` with the default optimizer settings. The modes alternate
(A B A B ...) so a machine whose speed drifts affects both alike; times are medians after warm-up.
FLOPs are counted with torch.utils.flop_counter; "of peak" compares the achieved rate with the best
of several large fp32 matmuls measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial

import torch
from torch.utils.flop_counter import FlopCounterMode

from cyclegan.config import TrainerConfig
from cyclegan.logging import NullLogger
from cyclegan.losses import CycleGANLoss
from cyclegan.models import CycleGAN
from cyclegan.schedule import LRMultiplier
from cyclegan.trainer import Trainer


def gemm_peak_gflops(device: torch.device, n: int = 2048, reps: int = 5) -> float:
    """Best rate of large square fp32 matmuls: the ceiling convolutions are measured against."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    best = float("inf")
    for _ in range(reps):
        sync(device)
        t = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def make_trainer(size: int, blocks: int, batch: int, device: torch.device, fused: bool) -> Trainer:
    torch.manual_seed(0)
    model = CycleGAN("resnet", n_residual_blocks=blocks, ngf=64, ndf=64)
    optimizer = partial(
        torch.optim.Adam,
        lr=2e-4,
        betas=(0.5, 0.999),
        fused=fused or None,
        foreach=None if fused else False,
    )
    return Trainer(
        model,
        CycleGANLoss(),
        optimizer,
        LRMultiplier("linear", 200, 100),
        TrainerConfig(progress=False),
        device,
        "/tmp",
        NullLogger(),
    )


def baseline_step(
    t: Trainer, real_A: torch.Tensor, real_B: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The seed's step, call by call (PyTorch-GAN's cyclegan.py), on the trainer's parts."""
    m, crit = t.model, t.criterion
    t.opt_G.zero_grad(set_to_none=False)
    loss_id = (crit.identity(m.G_BA(real_A), real_A) + crit.identity(m.G_AB(real_B), real_B)) / 2
    fake_B = m.G_AB(real_A)
    fake_A = m.G_BA(real_B)
    loss_GAN = (crit.gan(m.D_B(fake_B), True) + crit.gan(m.D_A(fake_A), True)) / 2
    loss_cycle = (crit.cycle(m.G_BA(fake_B), real_A) + crit.cycle(m.G_AB(fake_A), real_B)) / 2
    loss_G = crit.generator_total(loss_GAN, loss_cycle, loss_id)
    loss_G.backward()  # also fills D's weight gradients, which the D step then zeroes
    t.opt_G.step()
    losses = {"loss_G": loss_G.detach()}
    for name, D, opt, real, fake, buffer in (
        ("loss_D_A", m.D_A, t.opt_D_A, real_A, fake_A, t.buffer_A),
        ("loss_D_B", m.D_B, t.opt_D_B, real_B, fake_B, t.buffer_B),
    ):
        opt.zero_grad(set_to_none=False)
        loss = crit.discriminator(D(real), D(buffer.push_and_pop(fake).detach()))
        loss.backward()
        opt.step()
        losses[name] = loss.detach()
    return losses


def flops_of(step, trainer: Trainer, a: torch.Tensor, b: torch.Tensor) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        step(trainer, a, b)
    return counter.get_total_flops()


def run_case(
    size: int, blocks: int, batch: int, device: torch.device, warmup: int, reps: int, peak: float
) -> list[dict]:
    g = torch.Generator().manual_seed(1)
    a = (torch.rand(batch, 3, size, size, generator=g) * 2 - 1).to(device)
    b = (torch.rand(batch, 3, size, size, generator=g) * 2 - 1).to(device)
    modes = {
        "baseline": (make_trainer(size, blocks, batch, device, fused=False), baseline_step),
        "optimized": (make_trainer(size, blocks, batch, device, fused=True), Trainer.training_step),
    }
    # Same math: one step from identical weights gives the same losses.
    first = {
        name: {k: float(v) for k, v in step(t, a, b).items()} for name, (t, step) in modes.items()
    }
    gap = max(
        abs(first["baseline"][k] - first["optimized"][k])
        for k in ("loss_G", "loss_D_A", "loss_D_B")
    )
    flops = {name: flops_of(step, t, a, b) for name, (t, step) in modes.items()}
    times: dict[str, list[float]] = {name: [] for name in modes}
    for i in range(warmup + reps):
        for name, (t, step) in modes.items():  # interleaved: A B A B ...
            sync(device)
            start = time.perf_counter()
            step(t, a, b)
            sync(device)
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    rows = []
    for name in modes:
        sec = statistics.median(times[name])
        rows.append(
            {
                "case": f"{size}/{blocks}/{batch}",
                "mode": name,
                "s/step": sec,
                "img/s": batch / sec,
                "GFLOP/step": flops[name] / 1e9,
                "GFLOP/s": flops[name] / sec / 1e9,
                "of peak": flops[name] / sec / 1e9 / peak,
                "speed-up": statistics.median(times["baseline"]) / sec,
                "loss gap": gap,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--cases", default="128/9/1,64/6/4", help="img_size/blocks/batch, comma-separated"
    )
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    peak = gemm_peak_gflops(device)
    print(
        f"device {device}, {torch.get_num_threads()} threads, fp32 GEMM peak {peak:.0f} GFLOP/s (best 2048^3 matmul)"
    )
    rows = []
    for case in args.cases.split(","):
        size, blocks, batch = (int(x) for x in case.split("/"))
        rows += run_case(size, blocks, batch, device, args.warmup, args.reps, peak)
    header = f"{'case':>10s} {'mode':>10s} {'s/step':>8s} {'img/s':>7s} {'GFLOP/step':>11s} {'GFLOP/s':>8s} {'of peak':>8s} {'speed-up':>9s} {'loss gap':>9s}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['case']:>10s} {r['mode']:>10s} {r['s/step']:>8.3f} {r['img/s']:>7.2f} {r['GFLOP/step']:>11.1f} "
            f"{r['GFLOP/s']:>8.1f} {r['of peak']:>8.0%} {r['speed-up']:>8.2f}x {r['loss gap']:>9.1e}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
