"""CUT / FastCUT in lockstep with the reference code, step by step, against its own float drift.

    python benchmarks/cut_lockstep.py --reference /work/ref-cut                  # CUT, 50 steps
    python benchmarks/cut_lockstep.py --reference /work/ref-cut --mode fastcut

`--reference` is a checkout of taesungp/contrastive-unpaired-translation (b3ac297), never part of
this repository. Three runs start from the same weights (the reference's initial G, D and F, made
by its own `create_model` + `data_dependent_initialize` and loaded into the project's modules), see
the same batches (the project's loader on the built-in dataset: the same images, crops and flips
for all) and the same random draws (the project's seeded patch ids and FastCUT flips, fed to the
reference in place of its NumPy draws), and are compared after every step
(lockstep_common: R1 = reference on 1 thread, R2 = reference on 2 threads, P = project on 1).

`--dtype float64` runs all three in double precision, where the reference's own drift is exactly
zero and a gap at step 0 can only be summation order (~1e-14) or a real difference (>= 1e-8).
`--drift onednn` measures the drift with oneDNN's convolutions off instead of a second thread.

It also checks the data pipelines: under the same torch seed the reference's transform (Resize to
load x load, bicubic; RandomCrop; RandomHorizontalFlip) and the project's must give the same pixels.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lockstep_common as lc
import numpy as np
import torch
from PIL import Image

from cyclegan.data.builders import build_train_loader, prepare_dataset
from cyclegan.data.images import list_images
from cyclegan.data.transforms import load_size
from cyclegan.parts.nce import patch_sampler

LOSSES = ("loss_G", "loss_G_GAN", "loss_NCE", "loss_NCE_Y", "loss_D", "loss_D_real", "loss_D_fake")


# ------------------------------------------------------------------ the project's side


def project_config(args: argparse.Namespace, data_dir: Path) -> Any:
    """The project's composed config for these settings, as `train.py` would compose it.

    With `project_cut`, the one place that knows the project's config keys and container layout
    (adapt both when they move)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from cyclegan.config.schema import register_configs

    conf = Path(__file__).resolve().parents[1] / "conf"
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[
            f"method={args.mode}", f"model.ngf={args.ngf}", f"model.ndf={args.ngf}",
            f"model.n_residual_blocks={args.blocks}", f"dataset.img_size={args.size}",
            f"method.num_patches={args.num_patches}", f"method.netF_nc={args.netF_nc}",
            "schedule=constant", "schedule.n_epochs=1",
            f"seed={args.seed}",
            f"paths.data_dir={data_dir}", "trainer.device=cpu", "logger=none",
        ])  # fmt: skip
    GlobalHydra.instance().clear()
    return cfg


def project_cut(cfg: Any, ref_nets: dict[str, torch.nn.Module]) -> Any:
    """The project's CUT built from `cfg` by the Hydra builder, given the reference's weights."""
    from cyclegan.runtime.strategy import SingleProcess
    from cyclegan.training.builder import build_method

    method = build_method(cfg, torch.device("cpu"), SingleProcess())
    m = method.model.to(torch.get_default_dtype())  # (the blur filters are made float32)
    for name, net in (("G", m.G), ("D", m.D), ("F", m.F)):
        state = {lc.strip(k): v for k, v in ref_nets[name].state_dict().items()}
        net.load_state_dict(state, strict=True)
    return method


def project_batches(cfg: Any, n: int) -> tuple[Path, list[dict[str, torch.Tensor]]]:
    """The dataset folder and the first `n` batches of the project's training loader."""
    from hydra.utils import instantiate

    spec = instantiate(cfg.dataset)
    synthetic = instantiate(cfg.dataset.synthetic) if cfg.dataset.synthetic else None
    root = prepare_dataset(Path(cfg.dataset.root), synthetic)
    loader = build_train_loader(spec, root, cfg.trainer.batch_size, 0, cfg.seed)
    out: list[dict[str, torch.Tensor]] = []
    while len(out) < n:
        for batch in loader:
            out.append({k: v.to(torch.get_default_dtype()) for k, v in batch.items()})
            if len(out) == n:
                break
    return root, out


class IdRecorder:
    """Wraps the project's `draw_patch_ids` to see the ids of each step (the reference gets them)."""

    def __init__(self) -> None:
        self.draw = patch_sampler.draw_patch_ids
        self.ids: list[torch.Tensor] = []
        patch_sampler.draw_patch_ids = self._draw

    def _draw(self, *a: Any, **kw: Any) -> list[torch.Tensor]:
        ids = self.draw(*a, **kw)
        self.ids.extend(ids)
        return ids

    def take(self) -> list[torch.Tensor]:
        ids, self.ids = self.ids, []
        return ids


def next_flip(method: Any) -> bool:
    """The flip the project's next step will draw (a copy of its generator draws it first)."""
    if not method.flip_equivariance:
        return False
    g = torch.Generator()
    g.set_state(method.patch_rng.get_state())
    return bool(torch.rand((), generator=g) < 0.5)


# ------------------------------------------------------------------ the reference's side


class NumpyFeed:
    """Stands in for `np` in the reference's modules: `np.random.permutation` and `np.random.random`
    return the queued draws (patch ids, the flip's uniform) while any are queued, else NumPy's."""

    def __init__(self) -> None:
        self.perms: list[np.ndarray] = []
        self.uniforms: list[float] = []
        self.random = SimpleNamespace(permutation=self._perm, random=self._uniform)

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)

    def _perm(self, n: int) -> np.ndarray:
        return self.perms.pop(0) if self.perms else np.random.permutation(n)

    def _uniform(self) -> float:
        return self.uniforms.pop(0) if self.uniforms else np.random.random()

    def load(self, ids: list[torch.Tensor], flipped: bool | None) -> None:
        self.perms = [i.numpy().copy() for i in ids]
        self.uniforms = [] if flipped is None else [0.0 if flipped else 0.9]

    def check_used(self) -> None:
        if self.perms or self.uniforms:
            raise RuntimeError(
                f"the reference drew fewer random numbers than the project: {len(self.perms)} "
                f"permutations and {len(self.uniforms)} uniforms left"
            )


def import_reference(path: Path) -> SimpleNamespace:
    """The reference's modules, imported from its checkout, with `np` fed by a `NumpyFeed`."""
    if not (path / "models" / "cut_model.py").is_file():
        raise SystemExit(f"{path} is not a checkout of contrastive-unpaired-translation")
    sys.path.insert(0, str(path))
    import models.cut_model as cut_model
    import models.networks as networks
    from data.base_dataset import get_transform
    from models import create_model
    from options.train_options import TrainOptions

    feed = NumpyFeed()
    cut_model.np = networks.np = feed
    return SimpleNamespace(
        create_model=create_model, TrainOptions=TrainOptions, feed=feed,
        get_transform=get_transform,
    )  # fmt: skip


def reference_options(ref: SimpleNamespace, args: argparse.Namespace, root: Path, tmp: Path) -> Any:
    """The reference's options for these settings (CUT/FastCUT preset, CPU, the project's sizes)."""
    mode = {"cut": "CUT", "fastcut": "FastCUT"}[args.mode]
    cmd = (
        f"--dataroot {root} --name lockstep --checkpoints_dir {tmp} --model cut --CUT_mode {mode} "
        f"--netG resnet_{args.blocks}blocks --ngf {args.ngf} --ndf {args.ngf} --gpu_ids -1 "
        f"--load_size {load_size(args.size)} --crop_size {args.size} --num_patches "
        f"{args.num_patches} --netF_nc {args.netF_nc} --display_id 0 --num_threads 0"
    )
    # CUTModel.modify_commandline_options reads sys.argv for --CUT_mode whatever cmd_line says.
    argv, sys.argv = sys.argv, ["train.py", *cmd.split()]
    try:
        return ref.TrainOptions(cmd_line=cmd).parse()
    finally:
        sys.argv = argv


def check_settings(opt: Any, method: Any, cfg: Any) -> str:
    """The reference's options against the project's settings (a mismatch stops the run); reads
    the project's keys as `project_config` sets them (adapt them together)."""
    loss, s = method.criterion, method.nce  # loss group's weights, method group's NCE knobs
    pairs = {
        "lambda_GAN": (opt.lambda_GAN, loss.lambda_GAN), "lambda_NCE": (opt.lambda_NCE, s.lambda_NCE),
        "nce_idt": (opt.nce_idt, s.nce_idt), "nce_T": (opt.nce_T, s.nce_T),
        "flip_equivariance": (opt.flip_equivariance, method.flip_equivariance),
        "num_patches": (opt.num_patches, s.num_patches), "gan_mode": (opt.gan_mode, loss.gan_mode),
        "nce_layers": (tuple(int(i) for i in opt.nce_layers.split(",")), s.nce_layers),
        "lr": (opt.lr, cfg.optim.lr), "betas": ((opt.beta1, opt.beta2), tuple(cfg.optim.betas)),
        "ngf": (opt.ngf, cfg.model.ngf), "ndf": (opt.ndf, cfg.model.ndf),
    }  # fmt: skip
    wrong = {k: v for k, v in pairs.items() if v[0] != v[1]}
    if wrong:
        raise SystemExit(f"reference and project settings differ (reference, project): {wrong}")
    return "settings: the same " + ", ".join(f"{k}={v[0]}" for k, v in pairs.items())


def reference_cut(ref: SimpleNamespace, opt: Any, first: dict, seed: int) -> Any:
    """A reference CUTModel as its train.py makes it: create, data_dependent_initialize on the
    first batch (F is built there, after G and D), setup (schedulers), parallelize."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    model = ref.create_model(opt)
    model.data_dependent_initialize(as_reference_batch(first))
    model.setup(opt)
    model.parallelize()
    return model


def as_reference_batch(batch: dict[str, torch.Tensor]) -> dict[str, Any]:
    n = batch["A"].shape[0]
    return {"A": batch["A"], "B": batch["B"], "A_paths": ["a"] * n, "B_paths": ["b"] * n}


def reference_losses(model: Any) -> dict[str, float]:
    return {k: float(getattr(model, k)) for k in LOSSES if hasattr(model, k)}


def nets_of(model: Any) -> dict[str, torch.nn.Module]:
    if hasattr(model, "netG"):
        return {"G": model.netG, "D": model.netD, "F": model.netF}
    return {"G": model.G, "D": model.D, "F": model.F}


# ------------------------------------------------------------------ checks


def check_pipeline(ref: SimpleNamespace, opt: Any, root: Path, n: int = 50) -> str:
    """Max pixel difference between the reference's and the project's training transforms under
    the same torch seeds (crop offsets and flips are drawn from torch's global generator in both)."""
    from cyclegan.data.transforms import Preprocessing

    ours = Preprocessing.legacy(opt.crop_size)
    theirs = ref.get_transform(opt)
    files = list_images(root / "trainA")[:n] + list_images(root / "trainB")[:n]
    worst = 0.0
    for i, path in enumerate(files):
        img = Image.open(path).convert("RGB")
        torch.manual_seed(i)
        a = theirs(img)
        torch.manual_seed(i)
        b = ours(img)
        worst = max(worst, (a - b).abs().max().item())
    return (
        f"data pipeline: {len(files)} images, same seeds: max |reference - project| = {worst:.1e}"
    )


def run(args: argparse.Namespace) -> tuple[list[lc.StepRow], str]:
    """The lockstep run; returns the rows and the data pipeline line."""
    ref = import_reference(Path(args.reference))
    tmp = Path(tempfile.mkdtemp(prefix="cut_lockstep_"))
    cfg = project_config(args, Path(args.data_dir) if args.data_dir else tmp / "data")
    root, batches = project_batches(cfg, args.steps)
    opt = reference_options(ref, args, root, tmp)
    pipeline = check_pipeline(ref, opt, root)
    r1 = reference_cut(ref, opt, batches[0], args.seed)
    r2 = reference_cut(ref, opt, batches[0], args.seed)
    method = project_cut(cfg, nets_of(r1))
    method.start(len(batches))  # as the loop does (the constant rule ignores it)
    pipeline += "\n" + check_settings(opt, method, cfg)
    ids_rec = IdRecorder()
    r2_setting = lc.drift_setting(args.drift, args.threads)
    rows = []
    for step, batch in enumerate(batches):
        s1, s2, p = step_all(ref, [(r1, (1, True)), (r2, r2_setting)], method, batch, ids_rec)
        keys = [k for k in LOSSES if k in s1.losses]
        rows.append(lc.compare(step, s1, s2, p, keys, rows[-1] if rows else None))
        if args.verbose:
            print(lc.table(rows[-1:]).splitlines()[-1], flush=True)
    return rows, pipeline


def time_steps(args: argparse.Namespace) -> str:
    """Seconds per training step of the reference and the project, alternating step by step in
    one process from the same weights on the same batches (medians after 3 warm-up steps)."""
    ref = import_reference(Path(args.reference))
    tmp = Path(tempfile.mkdtemp(prefix="cut_timing_"))
    cfg = project_config(args, Path(args.data_dir) if args.data_dir else tmp / "data")
    root, batches = project_batches(cfg, args.steps)
    opt = reference_options(ref, args, root, tmp)
    model = reference_cut(ref, opt, batches[0], args.seed)
    method = project_cut(cfg, nets_of(model))
    method.start(len(batches))
    lc.set_backend(args.threads, True)
    times: dict[str, list[float]] = {"reference": [], "project": []}
    for batch in batches:
        start = time.perf_counter()
        model.set_input(as_reference_batch(batch))
        model.optimize_parameters()
        times["reference"].append(time.perf_counter() - start)
        start = time.perf_counter()
        method.training_step(method.to_device(batch))
        method.after_step()
        times["project"].append(time.perf_counter() - start)
    ref_s, ours = (statistics.median(times[k][3:]) for k in ("reference", "project"))
    return (
        f"{args.mode}, {args.size} px, ngf=ndf={args.ngf}, {args.threads} thread(s), "
        f"{args.steps} steps alternating: reference {ref_s:.3f} s/step, project {ours:.3f} "
        f"s/step, project / reference {ours / ref_s:.2f}"
    )


def step_all(ref: SimpleNamespace, runs: list[tuple[Any, tuple[int, bool]]], method: Any, batch: dict,
             ids_rec: IdRecorder) -> list[lc.Snapshot]:  # fmt: skip
    """One step of the project (its draws recorded), then of each reference run (fed the draws)."""
    flipped = next_flip(method)
    lc.set_backend(1, True)
    losses = method.training_step(method.to_device(batch))
    method.after_step()
    ids = ids_rec.take()
    snaps = []
    for model, setting in runs:
        ref.feed.load(ids, flipped if method.flip_equivariance else None)
        lc.set_backend(*setting)
        model.set_input(as_reference_batch(batch))
        model.optimize_parameters()
        ref.feed.check_used()
        snaps.append(lc.snapshot(nets_of(model), reference_losses(model)))
    snaps.append(lc.snapshot(nets_of(method.model), losses))
    return snaps


def drift_name(args: argparse.Namespace) -> str:
    return f"{args.threads} threads" if args.drift == "threads" else "1 thread, oneDNN off"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", required=True, help="checkout of the reference code")
    parser.add_argument("--mode", choices=["cut", "fastcut"], default="cut")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--size", type=int, default=64, help="crop size (px)")
    parser.add_argument("--ngf", type=int, default=16, help="ngf = ndf")
    parser.add_argument("--blocks", type=int, default=6, choices=[4, 6, 9])
    parser.add_argument("--num_patches", type=int, default=256)
    parser.add_argument("--netF_nc", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2, help="R2's intra-op threads")
    parser.add_argument(
        "--drift",
        choices=["threads", "onednn"],
        default="threads",
        help="R2 = the reference on --threads threads, or on 1 without oneDNN",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--dtype",
        choices=["float32", "float64"],
        default="float32",
        help="float64: rounding drift ~1e-16, so any real difference stands out",
    )
    parser.add_argument("--data_dir", default=None, help="where the built-in dataset is (made)")
    parser.add_argument("--every", type=int, default=5, help="print every n-th step")
    parser.add_argument("--verbose", action="store_true", help="print each step as it runs")
    parser.add_argument("--timing", action="store_true",
                        help="time the two steps instead (alternating, --threads threads)")  # fmt: skip
    args = parser.parse_args()
    torch.set_default_dtype(getattr(torch, args.dtype))
    if args.timing:
        print(time_steps(args))
        return
    rows, pipeline = run(args)
    print(f"{args.mode}: {args.size} px, ngf=ndf={args.ngf}, resnet_{args.blocks}blocks, "
          f"{args.num_patches} patches, netF_nc {args.netF_nc}, {args.steps} steps, {args.dtype}; "
          f"gap = project - reference (1 thread), drift = reference ({drift_name(args)}) - reference")  # fmt: skip
    print(pipeline)
    print(lc.table(rows, args.every))
    print(lc.verdict(rows))


if __name__ == "__main__":
    main()
