"""Speed of one CycleGAN training step: the seed's execution vs ours, interleaved, beside the GEMM peaks.

    python benchmarks/train_step.py                       # CPU: 128 px / 9 blocks / batch 1 and 64 / 6 / 4
    python benchmarks/train_step.py --device cuda --cases 256/9/1,256/9/8 \\
        --modes optimized,optimized+devbuf,optimized+graphs,optimized+bf16+cl+compile
    python benchmarks/train_step.py --modes optimized --set model.generator=unet_256 \\
        --set model.discriminator=basic --set loss.gan_mode=wgangp --cases 256/9/1

Modes run from the same weights and batch, alternating (A B C A B C ...) so a machine whose speed
drifts affects all alike; times are medians after warm-up. `baseline` is always measured (added
first when not named): every speed-up is quoted against it, except with `--set loss.*` options,
which the seed's step does not have (then the first mode is the reference).
- `baseline` mirrors the seed's execution (PyTorch-GAN's cyclegan.py, checked against the real
  script by `seed_compare.py`): eager fp32, every generator and discriminator call separate,
  discriminator weight gradients computed (then discarded) during the generator update, Adam's
  per-parameter loop, gradients set to None by `zero_grad()` (torch's default, which the seed uses).
- `optimized` is `cyclegan.methods.cyclegan.CycleGAN.training_step` with the default settings (batched
  generator passes, one discriminator call on real+fake, frozen discriminators in the generator
  update, fused Adam). Knobs, joined with `+`:
  `+bf16`/`+fp16` (trainer.precision), `+cl` (channels_last), `+compile` (torch.compile of the
  four networks; `+ro` with trainer.compile_mode=reduce-overhead, i.e. CUDA graphs per network;
  `+max` with max-autotune), `+devbuf` (the replay buffers on the device, as on a GPU by default:
  a step with no host read; on CUDA every mode but baseline has them),
  `+graphs` (trainer.cuda_graphs: the whole step, optimizer updates included, recorded as one
  CUDA graph and replayed; implies `+devbuf`), `+strict` (cuDNN's TF32
  off, so fp32 convolutions on a GPU do true fp32 math; PyTorch's default runs them as TF32),
  `+ckpt` (activation checkpointing; its CPU memory: `activation_memory.py`, which runs the modes
  in separate processes for their peak RSS).
Same math: the losses after one step from the same seed agree with the baseline's to ~1e-5 in fp32
("loss gap"; reduced precision shows its own rounding there). FLOPs are counted once per case with
torch.utils.flop_counter on the eager fp32 path. MFU is the achieved rate over the best of several
large matmuls measured in the same run: in bf16 ("MFU bf16") and in TF32 ("MFU tf32"), the two
ceilings of a GPU's tensor cores; on a CPU both columns use the fp32 matmul (the CPU's ceiling).
"step GiB" (CUDA) is the memory the step allocates over the resident weights and optimizer state.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from cyclegan.config.compose import compose_config
from cyclegan.methods.cyclegan import CycleGAN as Trainer
from cyclegan.runtime.strategy import SingleProcess
from cyclegan.training.builder import build_method

Step = Callable[[Trainer, torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]
PRECISIONS = {"bf16": "bf16-mixed", "fp16": "16-mixed"}
KNOBS = {"bf16", "fp16", "cl", "compile", "ro", "max", "devbuf", "graphs", "strict", "ckpt"}
COMPILE_MODES = {"compile": "default", "ro": "reduce-overhead", "max": "max-autotune"}


def gemm_peak_gflops(
    device: torch.device, dtype: torch.dtype, reps: int = 5, tf32: bool = False
) -> float:
    """Best rate of large square matmuls: the ceiling convolutions are measured against.

    `tf32=True` lets an fp32 matmul run on the tensor cores as TF32 (CUDA; off by default in
    PyTorch for matmuls, on for cuDNN convolutions).
    """
    n = 2048 if device.type == "cpu" else 8192
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        a @ b  # warm-up (library load, clocks up)
        best = float("inf")
        for _ in range(reps):
            sync(device)
            t = time.perf_counter()
            a @ b
            sync(device)
            best = min(best, time.perf_counter() - t)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous
    return 2 * n**3 / best / 1e9


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def parse_mode(mode: str) -> set[str]:
    """The knobs of `optimized+a+b` (baseline has none); typos and impossible mixes refused."""
    knobs = set(mode.split("+")[1:])
    unknown = knobs - KNOBS
    if unknown:
        raise SystemExit(
            f"unknown mode option(s) {sorted(unknown)}: use "
            + ", ".join(f"+{k}" for k in sorted(KNOBS))
        )
    if "graphs" in knobs and knobs & {"fp16", "ro"}:
        raise SystemExit(
            "+graphs cannot be combined with +fp16 (loss scaling reads the host) or +ro "
            "(reduce-overhead is CUDA graphs already)"
        )
    if len(knobs & set(COMPILE_MODES)) > 1:
        raise SystemExit("choose one of +compile, +ro, +max")
    return knobs


def make_trainer(
    size: int,
    blocks: int,
    batch: int,
    device: torch.device,
    mode: str = "optimized",
    options: dict[str, dict[str, Any]] | None = None,
) -> Trainer:
    """The CycleGAN method with the paper's widths (ngf = ndf = 64), the knobs `mode` names and
    the network and loss `options` ({"model": {...}, "loss": {...}}: config keys, see --set)."""
    options = options or {}
    knobs = parse_mode(mode)
    baseline = mode == "baseline"
    precision = next((PRECISIONS[k] for k in knobs if k in PRECISIONS), "32")
    compile_mode = next((COMPILE_MODES[k] for k in knobs if k in COMPILE_MODES), None)
    overrides = [
        f"model.n_residual_blocks={blocks}", "model.ngf=64", "model.ndf=64",
        *(f"{group}.{k}={v}" for group, keys in options.items() for k, v in keys.items()),
        "schedule.n_epochs=200", "schedule.decay_epoch=100",
        f"optim.fused={'null' if baseline else 'true'}",
        f"optim.foreach={'false' if baseline else 'null'}",
        f"trainer.precision={precision}",
        f"trainer.compile={compile_mode is not None}",
        f"trainer.compile_mode={compile_mode or 'default'}",
        f"trainer.channels_last={'cl' in knobs}",
        f"trainer.cuda_graphs={'graphs' in knobs}",
        f"trainer.activation_checkpointing={'ckpt' in knobs}",
    ]  # fmt: skip
    torch.manual_seed(0)
    method = build_method(
        compose_config(overrides),
        device,
        SingleProcess(),
        # The seed's buffer decides in Python on the host, like ReplayBuffer; the method's own
        # default is device buffers on a GPU, and +devbuf asks for them on a CPU too.
        device_buffers=False if baseline else (True if knobs & {"devbuf", "graphs"} else None),
    )
    method.start(steps_per_epoch=100)  # what the loop does first (tensor rates for +graphs)
    return method


def baseline_step(
    t: Trainer, real_A: torch.Tensor, real_B: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The seed's step, call by call (PyTorch-GAN's cyclegan.py), on the trainer's parts."""
    m, crit = t.model, t.criterion
    t.opt_G.zero_grad()
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
        opt.zero_grad()
        loss = crit.discriminator(D(real), D(buffer.push_and_pop(fake).detach()))
        loss.backward()
        opt.step()
        losses[name] = loss.detach()
    return losses


def step_of(mode: str) -> Step:
    """The mode's step function; `+strict` runs it with TF32 off (true fp32 convolutions)."""
    knobs = parse_mode(mode)
    step: Step = baseline_step if mode == "baseline" else optimized_step
    strict = "strict" in knobs

    def run(t: Trainer, a: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
        # cuDNN runs fp32 convolutions as TF32 on tensor cores by default (Ampere and newer); a
        # process-wide flag, so it is set around each step of the interleaved modes.
        torch.backends.cudnn.allow_tf32 = not strict
        return step(t, a, b)

    return run


def optimized_step(
    t: Trainer, real_A: torch.Tensor, real_B: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The method's own training step (cyclegan.methods.cyclegan)."""
    return t.training_step({"A": real_A, "B": real_B})


def flops_of(step: Step, trainer: Trainer, a: torch.Tensor, b: torch.Tensor) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        step(trainer, a, b)
    return counter.get_total_flops()


def run_case(
    size: int,
    blocks: int,
    batch: int,
    device: torch.device,
    modes: list[str],
    warmup: int,
    reps: int,
    peaks: dict[str, float],
    options: dict[str, dict[str, Any]] | None = None,
) -> list[dict]:
    """One case's rows; speed-ups against `baseline`, or the first mode when it is not run
    (network or loss options the seed's step does not have)."""
    reference = "baseline" if "baseline" in modes else modes[0]
    g = torch.Generator().manual_seed(1)
    a = (torch.rand(batch, 3, size, size, generator=g) * 2 - 1).to(device)
    b = (torch.rand(batch, 3, size, size, generator=g) * 2 - 1).to(device)
    trainers = {mode: make_trainer(size, blocks, batch, device, mode, options) for mode in modes}
    # Same math: one step from identical weights gives the same losses (before any timing).
    first, first_s = {}, {}
    for mode, t in trainers.items():
        start = time.perf_counter()
        first[mode] = {k: float(v) for k, v in step_of(mode)(t, a, b).items()}
        first_s[mode] = time.perf_counter() - start  # includes compilation for +compile
    ref = first[reference]
    keys = ("loss_G", "loss_D_A", "loss_D_B")
    gaps = {mode: max(abs(first[mode][k] - ref[k]) for k in keys) for mode in modes}
    # FLOPs on fresh eager fp32 trainers (the counter does not see inside compiled graphs).
    eager_flops = {
        kind: flops_of(
            step_of(kind), make_trainer(size, blocks, batch, device, kind, options), a, b
        )
        for kind in {"baseline" if m == "baseline" else "optimized" for m in modes}
    }
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    memory = dict.fromkeys(modes, 0.0)
    for i in range(warmup + reps):
        for mode, t in trainers.items():  # interleaved: A B C A B C ...
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
                resident = torch.cuda.memory_allocated(device)
            sync(device)
            start = time.perf_counter()
            step_of(mode)(t, a, b)
            sync(device)
            if i >= warmup:
                times[mode].append(time.perf_counter() - start)
            if device.type == "cuda":
                # The step's own memory (activations, gradients, workspace), not the other
                # modes' resident weights and optimizer states.
                used = torch.cuda.max_memory_allocated(device) - resident
                memory[mode] = max(memory[mode], used / 2**30)
    base = statistics.median(times[reference])
    rows = []
    for mode in modes:
        sec = statistics.median(times[mode])
        flops = eager_flops["baseline" if mode == "baseline" else "optimized"]
        rate = flops / sec / 1e9  # GFLOP/s
        rows.append(
            {
                "case": f"{size}/{blocks}/{batch}",
                "mode": mode,
                "s/step": sec,
                "img/s": batch / sec,
                "GFLOP/step": flops / 1e9,
                "GFLOP/s": rate,
                "MFU bf16": rate / peaks["bf16"],
                "MFU tf32": rate / peaks["tf32"],
                "speed-up": base / sec,
                "loss gap": gaps[mode],
                "GiB": memory[mode],
                "1st step s": first_s[mode],
            }
        )
    return rows


def print_table(rows: list[dict], with_memory: bool) -> None:
    width = max(10, *(len(r["mode"]) for r in rows))
    header = (
        f"{'case':>9s} {'mode':>{width}s} {'s/step':>8s} {'img/s':>7s} {'speed-up':>8s} "
        f"{'GFLOP/step':>10s} {'GFLOP/s':>8s} {'MFU bf16':>8s} {'MFU tf32':>8s} "
        f"{'loss gap':>8s} {'1st step':>8s}"
    ) + (f" {'step GiB':>8s}" if with_memory else "")
    print(header)
    print("-" * len(header))
    for r in rows:
        line = (
            f"{r['case']:>9s} {r['mode']:>{width}s} {r['s/step']:>8.4f} {r['img/s']:>7.2f} "
            f"{r['speed-up']:>7.2f}x {r['GFLOP/step']:>10.1f} {r['GFLOP/s']:>8.1f} "
            f"{r['MFU bf16']:>8.1%} {r['MFU tf32']:>8.1%} {r['loss gap']:>8.1e} "
            f"{r['1st step s']:>7.1f}s"
        )
        print(line + (f" {r['GiB']:>8.2f}" if with_memory else ""), flush=True)


def parse_sets(items: list[str]) -> dict[str, dict[str, Any]]:
    """`model.generator=unet_256`, `loss.lambda_gp=10` ... -> {"model": {...}, "loss": {...}}."""
    options: dict[str, dict[str, Any]] = {"model": {}, "loss": {}}
    for item in items:
        key, sep, text = item.partition("=")
        group, _, name = key.partition(".")
        if not sep or group not in options or not name:
            raise SystemExit(f"--set {item}: use model.KEY=VALUE or loss.KEY=VALUE")
        value: Any = text
        for cast in (int, float):
            try:
                value = cast(text)
                break
            except ValueError:
                pass
        if text.lower() in ("true", "false"):
            value = text.lower() == "true"
        options[group][name] = value
    return options


def measure_peaks(device: torch.device) -> dict[str, float]:
    """GFLOP/s of the best large matmul: fp32 (strict), TF32 and bf16 on CUDA; fp32 on a CPU."""
    fp32 = gemm_peak_gflops(device, torch.float32)
    if device.type != "cuda":
        # CPUs without bf16 matrix units take minutes for one such matmul: fp32 is the ceiling.
        return {"fp32": fp32, "tf32": fp32, "bf16": fp32}
    return {
        "fp32": fp32,
        "tf32": gemm_peak_gflops(device, torch.float32, tf32=True),
        "bf16": gemm_peak_gflops(device, torch.bfloat16),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--cases", default="128/9/1,64/6/4", help="img_size/blocks/batch, comma-separated"
    )
    parser.add_argument(
        "--modes",
        default="baseline,optimized",
        help="comma-separated: baseline (always run: the speed-ups' reference) | "
        "optimized[+bf16|+fp16][+cl][+compile|+ro|+max][+devbuf][+graphs][+strict]",
    )
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a model./loss. config key for every mode, e.g. --set model.generator=unet_256 "
        "--set loss.gan_mode=wgangp (benchmarks/options.py tables them all)",
    )
    args = parser.parse_args(argv)
    options = parse_sets(args.set)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # what the trainer does on CUDA
    modes = args.modes.split(",")
    for mode in modes:
        parse_mode(mode)  # refuse typos before minutes of measuring
    if options["loss"]:  # the baseline is the seed's lsgan step: the first mode is the reference
        if "baseline" in modes:
            raise SystemExit(
                "the baseline mode is the seed's lsgan step: drop it to time loss. options"
            )
    else:
        modes = ["baseline", *(m for m in modes if m != "baseline")]
    peaks = measure_peaks(device)
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu, {torch.get_num_threads()} threads"
    )
    print(
        f"device {name}, torch {torch.__version__}; GEMM peak (best large matmul): "
        + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peaks.items()),
        flush=True,
    )
    rows = []
    for case in args.cases.split(","):
        size, blocks, batch = (int(x) for x in case.split("/"))
        case_rows = run_case(
            size, blocks, batch, device, modes, args.warmup, args.reps, peaks, options
        )
        print_table(case_rows, device.type == "cuda")  # each case as soon as it is measured
        rows += case_rows
    if len(args.cases.split(",")) > 1:
        print("\nall cases:")
        print_table(rows, device.type == "cuda")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
