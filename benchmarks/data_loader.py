"""Images per second the training DataLoader delivers, beside what the training step consumes.

    python benchmarks/data_loader.py                      # 64 and 128 px, cache off/on, 0 and 2 workers
    python benchmarks/data_loader.py --sizes 64 --step-img-s 12.5   # skip timing the step

The loader is `cyclegan.data.builders.build_train_loader` on the built-in synthetic dataset (generated under
--data-dir on first use, as `python train.py` does), batch 1, exactly as training builds it, with
`dataset.cache` off (decode PNG + bicubic resize + PIL crop/flip per image) and on (crop/flip of
a cached uint8 tensor). Rates count A and B images (two per sample), after --warmup samples, over
--samples samples; the cache fill at start-up is reported separately. The step's consumption is
the CycleGAN method's `training_step` of the default recipe (6 blocks, ngf 32, ndf 64, 64 px, batch 1,
2 images per step), median of a few steps after warm-up. "ratio" is loader img/s over step img/s:
the loader is never the bottleneck while it stays well above 1 (the target is >= 10).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from cyclegan.config.compose import compose_config
from cyclegan.data.builders import build_train_loader
from cyclegan.data.spec import DatasetSpec
from cyclegan.data.synthetic import SyntheticLandscapes
from cyclegan.runtime.strategy import SingleProcess
from cyclegan.training.builder import build_method


def step_images_per_second(size: int, steps: int, warmup: int) -> float:
    """A and B images per second consumed by the default recipe's training step."""
    torch.manual_seed(0)
    trainer = build_method(compose_config(), torch.device("cpu"), SingleProcess())  # default recipe
    a, b = torch.rand(1, 3, size, size) * 2 - 1, torch.rand(1, 3, size, size) * 2 - 1
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        trainer.training_step({"A": a, "B": b})
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return 2 / statistics.median(times)


def loader_images_per_second(
    root: Path, size: int, cache: bool, workers: int, samples: int, warmup: int
) -> tuple[float, float]:
    """(A+B images per second after warm-up, seconds to build the loader incl. any cache fill)."""
    dataset = DatasetSpec(
        name="synthetic", root=str(root), img_size=size, load_scale=1.12, flip=True,
        preprocess="resize_and_crop", load_size=None, crop_size=None, channels_A=3, channels_B=3,
        download_name=None, paired_test=True, synthetic=None, cache=cache, cache_max_gb=4.0,
    )  # fmt: skip
    start = time.perf_counter()
    loader = build_train_loader(dataset, root, batch_size=1, num_workers=workers, seed=0)
    build = time.perf_counter() - start
    assert loader.dataset.cached == cache  # type: ignore[attr-defined]
    it = iter(loader)  # 400 samples an epoch; start over at the end
    count, t0 = 0, 0.0
    while count < warmup + samples:
        try:
            next(it)
        except StopIteration:
            it = iter(loader)
            continue
        count += 1
        if count == warmup:
            t0 = time.perf_counter()
    elapsed = time.perf_counter() - t0
    del it, loader  # stop persistent workers before the next configuration
    return 2 * samples / elapsed, build


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="64,128", help="img_size values, comma-separated")
    parser.add_argument("--workers", default="0,2", help="num_workers values, comma-separated")
    parser.add_argument("--samples", type=int, default=400, help="timed samples per config")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--data-dir", default="data", help="where the built-in dataset lives")
    parser.add_argument("--step-steps", type=int, default=3, help="timed training steps")
    parser.add_argument(
        "--step-img-s", type=float, default=None, help="use this step rate instead of timing it"
    )
    args = parser.parse_args(argv)

    step_rate = args.step_img_s
    if step_rate is None:
        step_rate = step_images_per_second(64, args.step_steps, warmup=1)
    print(
        f"DataLoader throughput on the built-in dataset (batch 1, A+B images/s over "
        f"{args.samples} samples after {args.warmup} warm-up) vs the default recipe's training "
        f"step (resnet, 6 blocks, ngf 32, 64 px, batch 1): {step_rate:.1f} img/s; "
        f"{torch.get_num_threads()} torch threads"
    )
    header = (
        f"{'img_size':>8s} {'cache':>6s} {'workers':>7s} {'build s':>8s} "
        f"{'loader img/s':>13s} {'step img/s':>11s} {'ratio':>7s}"
    )
    print(header)
    print("-" * len(header))
    for size in (int(s) for s in args.sizes.split(",")):
        root = Path(args.data_dir) / f"synthetic-{size}px-seed0"
        SyntheticLandscapes(n_train=400, n_test=50, size=size, seed=0).prepare(root)
        for cache in (False, True):
            for workers in (int(w) for w in args.workers.split(",")):
                rate, build = loader_images_per_second(
                    root, size, cache, workers, args.samples, args.warmup
                )
                print(
                    f"{size:>8d} {'on' if cache else 'off':>6s} {workers:>7d} {build:>8.2f} "
                    f"{rate:>13.0f} {step_rate:>11.1f} {rate / step_rate:>6.0f}x",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
