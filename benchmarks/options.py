"""The option table: parameters and training-step time of every network and loss option, one run.

    python benchmarks/options.py                  # CPU: 256 px, 9 blocks, batch 1, timed at width 16
    python benchmarks/options.py --size 128 --only default,unet_128 --reps 3
    python benchmarks/options.py --device cuda --width 64 --reps 10

Each row changes one thing from the default recipe's networks (model=resnet, loss=cyclegan) and
times `cyclegan.methods.cyclegan.CycleGAN.training_step` (the `optimized` mode of
benchmarks/train_step.py, fp32) on the same batch, with ngf = ndf = `--width` (16 by default, so
a CPU measures the table in minutes); the parameter columns are at the full width, 64. The rows run interleaved (A B C A B C ...) so a
machine whose speed drifts affects all alike; the time is the median after warm-up. U-Nets need
sides divisible by 128 (unet_128) or 256 (unet_256), so the default size is 256. init_type and
init_gain change no size and no speed and have no row.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: train_step beside it
import train_step

from cyclegan.config.schema import group_defaults
from cyclegan.methods.cyclegan_networks import CycleGANNetworks
from cyclegan.parts.networks.factory import count_parameters

# name -> (the keys users type, the options for train_step.make_trainer)
OPTIONS: dict[str, tuple[str, dict[str, dict]]] = {
    "default": ("model=resnet (generator=resnet, discriminator=pytorch_gan)", {}),
    "paper": (
        "model=paper (generator=paper, discriminator=basic)",
        {"model": {"generator": "paper", "discriminator": "basic"}},
    ),
    "unet_128": ("model.generator=unet_128", {"model": {"generator": "unet_128"}}),
    "unet_256": ("model.generator=unet_256", {"model": {"generator": "unet_256"}}),
    "unet_256_bn": (
        "model.generator=unet_256 model.norm=batch model.use_dropout=true model.discriminator=basic",
        {
            "model": {
                "generator": "unet_256",
                "norm": "batch",
                "use_dropout": True,
                "discriminator": "basic",
            }
        },
    ),
    "basic": ("model.discriminator=basic", {"model": {"discriminator": "basic"}}),
    "n_layers_2": (
        "model.discriminator=n_layers model.n_layers_D=2",
        {"model": {"discriminator": "n_layers", "n_layers_D": 2}},
    ),
    "n_layers_4": (
        "model.discriminator=n_layers model.n_layers_D=4",
        {"model": {"discriminator": "n_layers", "n_layers_D": 4}},
    ),
    "pixel": ("model.discriminator=pixel", {"model": {"discriminator": "pixel"}}),
    "spectral_norm": ("model.spectral_norm=true", {"model": {"spectral_norm": True}}),
    "vanilla": ("loss.gan_mode=vanilla", {"loss": {"gan_mode": "vanilla"}}),
    "hinge": ("loss.gan_mode=hinge", {"loss": {"gan_mode": "hinge"}}),
    "wgangp": ("loss.gan_mode=wgangp (loss.lambda_gp=10)", {"loss": {"gan_mode": "wgangp"}}),
}


def _options(name: str, width: int) -> dict[str, dict]:
    opts = OPTIONS[name][1]
    return {
        "model": {**opts.get("model", {}), "ngf": width, "ndf": width},
        "loss": opts.get("loss", {}),
    }


def measure(
    names: list[str],
    size: int,
    blocks: int,
    batch: int,
    device: torch.device,
    warmup: int,
    reps: int,
    width: int = 16,
) -> list[dict]:
    g = torch.Generator().manual_seed(1)
    a = (torch.rand(batch, 3, size, size, generator=g) * 2 - 1).to(device)
    b = (torch.rand(batch, 3, size, size, generator=g) * 2 - 1).to(device)
    full = {}  # parameter counts at the full width 64 (built, never stepped)
    for n in names:
        spec = group_defaults(
            "model", "resnet", n_residual_blocks=blocks, **_options(n, 64)["model"]
        )
        model = CycleGANNetworks(spec, 3, 3)
        full[n] = (count_parameters(model.G_AB), count_parameters(model.D_A))
        del model
    trainers = {
        n: train_step.make_trainer(size, blocks, batch, device, "optimized", _options(n, width))
        for n in names
    }
    times: dict[str, list[float]] = {n: [] for n in names}
    for i in range(warmup + reps):
        for name, t in trainers.items():  # interleaved
            train_step.sync(device)
            start = time.perf_counter()
            losses = t.training_step({"A": a, "B": b})
            train_step.sync(device)
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
            if not all(torch.isfinite(v) for v in losses.values()):
                raise SystemExit(f"{name}: non-finite losses {losses}")
    base = statistics.median(times[names[0]])
    return [
        {
            "name": name,
            "keys": OPTIONS[name][0],
            "G": full[name][0],
            "D": full[name][1],
            "s": statistics.median(times[name]),
            "rel": statistics.median(times[name]) / base,
        }
        for name in names
    ]


def print_markdown(
    rows: list[dict], size: int, blocks: int, batch: int, device: str, width: int = 16
) -> None:
    print(
        f"\n{size} px, {blocks} blocks (ResNet generators), batch {batch}, {device}; "
        f"parameters at ngf = ndf = 64, step time at ngf = ndf = {width}:\n"
    )
    print("| option | G params | D params | s/step | vs default |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| `{r['keys']}` | {r['G'] / 1e6:.2f}M | {r['D'] / 1e6:.3f}M | {r['s']:.3f} | "
            f"{r['rel']:.2f}x |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--blocks", type=int, default=9)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--width", type=int, default=16, help="ngf = ndf for the timed step")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(OPTIONS)}")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(OPTIONS)
    unknown = [n for n in names if n not in OPTIONS]
    if unknown:
        raise SystemExit(f"unknown option row(s) {unknown}; choose from {', '.join(OPTIONS)}")
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    threads = f"cpu, {torch.get_num_threads()} threads"
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else threads
    rows = measure(
        names, args.size, args.blocks, args.batch, device, args.warmup, args.reps, args.width
    )
    device_name = f"{name}, torch {torch.__version__}"
    print_markdown(rows, args.size, args.blocks, args.batch, device_name, args.width)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
