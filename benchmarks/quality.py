"""Translation quality on the built-in dataset at several training budgets, beside both baselines.

    python benchmarks/quality.py                      # budgets of 100, 400 and 800 steps (800 is the default run)
    python benchmarks/quality.py --budgets 300,1200 model.ngf=16

Each budget is a separate run from scratch with the default recipe (plus any overrides): two
epochs of budget/2 steps, the learning rate halved for the second (the default run is budget 800). The table shows at which budget the model beats
the identity baseline (its input) and the mean-image baseline (the average winter image), which
pixel metrics favour because they reward blur.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_dir

from cyclegan.config.schema import register_configs
from cyclegan.training.builder import train

CONF = Path(__file__).resolve().parents[1] / "conf"


def run_budget(steps: int, overrides: list[str], out: Path, data_dir: str) -> dict[str, float]:
    epochs = 2
    per_epoch = math.ceil(steps / epochs)
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            config_name="config",
            overrides=[
                f"schedule.n_epochs={epochs}",
                "schedule.decay_epoch=1",
                f"trainer.steps_per_epoch={per_epoch}",
                "trainer.progress=false",
                "trainer.sample_every=0",
                "logger=none",
                f"paths.data_dir={data_dir}",
                f"paths.output_dir={out}",
                *overrides,
            ],
        )
    start = time.perf_counter()
    train(cfg)
    summary = json.loads((out / "summary.json").read_text())
    summary["wall_s"] = time.perf_counter() - start
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--budgets", default="100,400,800", help="comma-separated training steps")
    parser.add_argument(
        "--data-dir", default="data", help="where the built-in dataset is generated"
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides applied to every run")
    args = parser.parse_args(argv)
    register_configs()
    budgets = [int(b) for b in args.budgets.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for steps in budgets:
            rows.append(
                (steps, run_budget(steps, args.overrides, Path(tmp) / f"run{steps}", args.data_dir))
            )
    base = rows[0][1]
    header = f"{'run':>18s} {'steps':>6s} {'wall s':>7s} {'PSNR A->B':>10s} {'SSIM A->B':>10s} {'PSNR B->A':>10s} {'SSIM B->A':>10s}"
    print(header)
    print("-" * len(header))
    for name in ("identity", "mean"):
        cells = [base[f"baseline/{name}/{m}_{d}"] for d in ("AB", "BA") for m in ("psnr", "ssim")]
        print(
            f"{'baseline: ' + name:>18s} {'-':>6s} {'-':>7s} {cells[0]:>10.2f} {cells[1]:>10.4f} {cells[2]:>10.2f} {cells[3]:>10.4f}"
        )
    for steps, s in rows:
        cells = [s[f"eval/{m}_{d}"] for d in ("AB", "BA") for m in ("psnr", "ssim")]
        beats = all(
            s[f"eval/{m}_{d}"] > s[f"baseline/mean/{m}_{d}"]
            for d in ("AB", "BA")
            for m in ("psnr", "ssim")
        )
        label = "model" + (" (beats mean)" if beats else "")
        print(
            f"{label:>18s} {steps:>6d} {s['wall_s']:>7.0f} {cells[0]:>10.2f} {cells[1]:>10.4f} {cells[2]:>10.2f} {cells[3]:>10.4f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
