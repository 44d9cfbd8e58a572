"""Whole CUT runs side by side: the reference's own train.py and the project's train.py, same data.

    python benchmarks/cut_vs_reference.py --reference /work/ref-cut \
        --reference-python /work/ref-cut-venv/bin/python --seeds 0,1,2 --out /tmp/cut_vs_ref

`--reference` is a checkout of taesungp/contrastive-unpaired-translation (b3ac297; never part of
this repository), run unmodified through its `train.py` by a small launcher that only seeds
Python's, NumPy's and torch's generators first (the reference has no seed option). Both train on
the built-in dataset as `python train.py` writes it (data/synthetic-64px-seed0: 400 images a
domain, so one epoch = 400 iterations at batch 1) with the reference's CUT settings: its CUT preset,
resnet_6blocks, ngf = ndf = 64 (`--ngf`), Adam 2e-4 (0.5, 0.999) constant, resize to 71 then a random 64 crop
and flip (the project's 1.12x). Runs alternate (reference seed 0, project seed 0, reference seed 1,
...), so a machine whose speed drifts slows both alike; time per iteration is each run's training
loop over its 400 iterations (reference: its "End of epoch" time, which like the project's
`time/train_s` includes data loading and the end-of-epoch save).

Both final generators are scored by the same code (cyclegan.evaluation.paired) on the paired test
split (testA -> testB ground truth), beside the identity and mean-image baselines; Welch's t-test
says whether the two sets of 3 seeds can be told apart.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from scipy import stats

from cyclegan.data.builders import load_test_images, prepare_dataset
from cyclegan.data.synthetic import SyntheticLandscapes
from cyclegan.evaluation.paired import PairedEvaluator
from cyclegan.inference.cut_weights import load_cut_generator
from cyclegan.inference.importers import load_generator

REPO = Path(__file__).resolve().parents[1]
SIZE, LOAD, BLOCKS = 64, 71, 6
LAUNCH = (  # seeds the generators, then runs the reference's train.py as its own __main__
    "import random, runpy, sys, numpy, torch; ref, seed = sys.argv[1], int(sys.argv[2]); "
    "random.seed(seed); numpy.random.seed(seed); torch.manual_seed(seed); "
    "sys.path.insert(0, ref); sys.argv = [ref + '/train.py'] + sys.argv[3:]; "
    "runpy.run_path(ref + '/train.py', run_name='__main__')"
)


def env(args: argparse.Namespace) -> dict[str, str]:
    """Both codes' environment: with --threads, that many intra-op threads for each."""
    if not args.threads:
        return dict(os.environ)
    n = str(args.threads)
    return {**os.environ, "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n}


def reference_run(args: argparse.Namespace, root: Path, seed: int) -> dict[str, Any]:
    """The reference's train.py for one seed; its generator file and seconds per iteration."""
    name = f"ref_ngf{args.ngf}_seed{seed}"
    flags = (
        f"--dataroot {root} --name {name} --checkpoints_dir {args.out} --model cut --CUT_mode CUT "
        f"--netG resnet_{BLOCKS}blocks --ngf {args.ngf} --ndf {args.ngf} --gpu_ids -1 --batch_size 1 "
        f"--load_size {LOAD} --crop_size {SIZE} --n_epochs 1 --n_epochs_decay 0 --lr 0.0002 "
        "--lr_policy linear --display_id 0 --no_html --num_threads 0 --print_freq 100 "
        "--save_epoch_freq 1"
    ).split()
    if args.iterations:  # smoke tests only: the reference then also draws B from fewer files
        flags += ["--max_dataset_size", str(args.iterations)]
    cmd = [args.reference_python, "-c", LAUNCH, str(args.reference), str(seed), *flags]
    log_file = args.out / f"{name}.log"
    if not (args.resume and (args.out / name / "latest_net_G.pth").is_file()):
        out = subprocess.run(cmd, cwd=args.reference, capture_output=True, text=True, env=env(args))
        log_file.write_text(out.stdout + out.stderr)
        if out.returncode:
            raise SystemExit(f"the reference failed (seed {seed}); see {log_file}")
    log = log_file.read_text()
    seconds = float(re.findall(r"End of epoch 1 / 1 \t Time Taken: (\d+) sec", log)[-1])
    iters = int(re.findall(r"The number of training images = (\d+)", log)[0])
    return {
        "G": load_cut_generator(args.out / name / "latest_net_G.pth"),
        "s_per_it": seconds / iters,
    }


def project_run(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """The project's train.py with the same settings; its generator and seconds per iteration."""
    run_dir = args.out / f"project_ngf{args.ngf}_seed{seed}"
    overrides = [
        "method=cut", f"model.ngf={args.ngf}", f"model.ndf={args.ngf}",
        f"model.n_residual_blocks={BLOCKS}", f"dataset.img_size={SIZE}", "schedule=constant",
        "schedule.n_epochs=1", f"seed={seed}", "logger=none",
        "trainer.progress=false", "trainer.sample_every=0", "trainer.eval_every=0",
        f"paths.data_dir={args.data_dir}", f"hydra.run.dir={run_dir}", *args.overrides,
    ]  # fmt: skip
    if args.iterations:
        overrides.append(f"trainer.steps_per_epoch={args.iterations}")
    if not (args.resume and (run_dir / "summary.json").is_file()):
        cmd = [sys.executable, str(REPO / "train.py"), *overrides]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env(args))
        (run_dir.parent / f"{run_dir.name}.log").write_text(out.stdout + out.stderr)
        if out.returncode:
            raise SystemExit(f"the project failed (seed {seed}); see {run_dir}.log")
    summary = json.loads((run_dir / "summary.json").read_text())
    loaded = load_generator(run_dir / "checkpoints" / "last.pt")
    return {"G": loaded.generator, "s_per_it": summary["time/train_s"] / summary["step"]}


def mean_std(values: list[float], digits: int) -> str:
    """Mean ± sample std; one run has no spread to report."""
    if len(values) < 2:
        return f"{statistics.mean(values):.{digits}f} (one run)"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def welch(a: list[float], b: list[float]) -> str:
    """Welch's t (reference - project) and its two-sided p."""
    if min(len(a), len(b)) < 2:
        return "needs two seeds a side"
    t, p = stats.ttest_ind(a, b, equal_var=False)
    return f"t = {t:.2f}, p = {p:.2f}"


def report(rows: dict[str, list[dict[str, float]]], baselines: dict[str, float]) -> str:
    """The quality and time table (markdown), one row per code, then the tests and baselines."""
    lines = ["| run | " + " | ".join(f"seed {s}" for s in range(len(rows["reference"])))
             + " | PSNR mean ± std | SSIM mean ± std | s/iteration |", "|---" * (len(rows["reference"]) + 4) + "|"]  # fmt: skip
    for name, runs in rows.items():
        cells = [f"{r['psnr']:.2f} dB / {r['ssim']:.3f}" for r in runs]
        psnr, ssim = [r["psnr"] for r in runs], [r["ssim"] for r in runs]
        times = [r["s_per_it"] for r in runs]
        lines.append(f"| {name} CUT | " + " | ".join(cells) + f" | {mean_std(psnr, 2)} | "
                     f"{mean_std(ssim, 3)} | {mean_std(times, 3)} |")  # fmt: skip
    ref, ours = rows["reference"], rows["project"]
    for metric in ("psnr", "ssim"):
        lines.append(
            f"\nWelch {metric.upper()}: "
            + welch([r[metric] for r in ref], [r[metric] for r in ours])
        )
    ratio = statistics.mean(r["s_per_it"] for r in ours) / statistics.mean(
        r["s_per_it"] for r in ref
    )
    lines.append(f"time per iteration, project / reference: {ratio:.2f}")
    lines.append(
        f"baselines: identity {baselines['baseline/identity/psnr_AB']:.2f} dB / "
        f"{baselines['baseline/identity/ssim_AB']:.3f}, mean image "
        f"{baselines['baseline/mean/psnr_AB']:.2f} dB / {baselines['baseline/mean/ssim_AB']:.3f}"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, required=True, help="checkout of the reference")
    parser.add_argument("--reference-python", default=sys.executable,
                        help="a Python that has the reference's dependencies (dominate)")  # fmt: skip
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--threads", type=int, default=0,
                        help="intra-op threads of both (0: torch's default); 1 on a crowded machine")  # fmt: skip
    parser.add_argument(
        "--ngf", type=int, default=64, help="ngf = ndf of both (the reference's 64)"
    )
    parser.add_argument("--out", type=Path, default=Path("outputs/cut_vs_reference"))
    parser.add_argument("--data_dir", type=Path, default=Path("data"))
    parser.add_argument("--iterations", type=int, default=None,
                        help="smoke test: fewer iterations (default: one epoch, 400)")  # fmt: skip
    parser.add_argument("--resume", action="store_true", help="reuse runs already in --out")
    parser.add_argument("overrides", nargs="*", help="extra overrides for the project's run")
    args = parser.parse_args()
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    args.data_dir = args.data_dir.resolve()
    # The built-in dataset, as `python train.py` renders it on first use.
    root = prepare_dataset(
        args.data_dir / f"synthetic-{SIZE}px-seed0", SyntheticLandscapes(size=SIZE)
    )
    test = load_test_images(root, SIZE, paired=True)
    evaluate = PairedEvaluator(test.A, test.B, test.mean_A, test.mean_B)
    rows: dict[str, list[dict[str, float]]] = {"reference": [], "project": []}
    for seed in (int(s) for s in args.seeds.split(",")):
        for name, run in (("reference", lambda s=seed: reference_run(args, root, s)),
                          ("project", lambda s=seed: project_run(args, s))):  # fmt: skip
            result = run()
            scores = evaluate(result["G"], None)
            row = {"psnr": scores["eval/psnr_AB"], "ssim": scores["eval/ssim_AB"],
                   "s_per_it": result["s_per_it"]}  # fmt: skip
            rows[name].append(row)
            print(f"{name} seed {seed}: {json.dumps(row)}", flush=True)
    (args.out / f"rows_ngf{args.ngf}.json").write_text(json.dumps(rows, indent=1))
    print(report(rows, evaluate.baselines))


if __name__ == "__main__":
    main()
