"""CycleGAN in lockstep with PyTorch-GAN's `implementations/cyclegan/cyclegan.py`, against its drift.

    python benchmarks/cyclegan_lockstep.py --reference /work/ref-pytorchgan      # 50 steps, 32 px

`--reference` is a checkout of eriklindernoren/PyTorch-GAN (never part of this repository). Its
`cyclegan.py` is a script whose training loop runs at module level, so it is executed unmodified,
twice (R1 on one intra-op thread, R2 on two), each in a thread of its own that is handed the next
batch only when the controller says so: its `DataLoader` is replaced by a feeder of the same
batches the project gets (the project's loader on the built-in dataset). After each step the
controller reads the script's networks and losses from its globals and compares them with the
project's CycleGAN (P), which started from R1's initial weights (lockstep_common).

The replay buffers only fill during the first 50 steps (no random draw: each returns the new
fake), so both sides see the same fakes up to step 50 without sharing a generator.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import lockstep_common as lc
import torch
import torch.utils.data
from cut_lockstep import drift_name, project_batches

LOSSES = ("loss_G", "loss_GAN", "loss_cycle", "loss_identity", "loss_D_A", "loss_D_B", "loss_D")
NETS = ("G_AB", "G_BA", "D_A", "D_B")


def project_config(args: argparse.Namespace, data_dir: Path) -> Any:
    """The project's config for PyTorch-GAN's settings (with `project_cyclegan`, the one place that
    knows the project's keys and container layout)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from cyclegan.config.schema import register_configs

    conf = Path(__file__).resolve().parents[1] / "conf"
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[
            "method=cyclegan", "model=resnet", "model.ngf=64", "model.ndf=64",
            f"model.n_residual_blocks={args.blocks}", f"dataset.img_size={args.size}",
            "schedule=linear", "schedule.n_epochs=2", "schedule.decay_epoch=1", f"seed={args.seed}",
            f"paths.data_dir={data_dir}", "trainer.device=cpu", "logger=none",
        ])  # fmt: skip
    GlobalHydra.instance().clear()
    return cfg


def project_cyclegan(cfg: Any, ref_nets: dict[str, torch.nn.Module]) -> Any:
    """The project's CycleGAN from `cfg` (the Hydra builder), given the reference's weights."""
    from cyclegan.runtime.strategy import SingleProcess
    from cyclegan.training.builder import build_method

    method = build_method(cfg, torch.device("cpu"), SingleProcess())
    for name in NETS:
        getattr(method.model, name).load_state_dict(ref_nets[name].state_dict(), strict=True)
    return method


class Feeder:
    """The script's training `DataLoader`: yields the given batches one step at a time, waiting
    for the controller before each, and sets the script thread's intra-op threads."""

    def __init__(self, batches: list[dict[str, torch.Tensor]], setting: tuple[int, bool]) -> None:
        self.batches, self.setting = batches, setting
        self.go, self.done = threading.Semaphore(0), threading.Semaphore(0)
        self.error: BaseException | None = None
        self.started = threading.Event()  # the script reached its training loop

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Any:
        self.started.set()
        for i, batch in enumerate(self.batches):
            if i:
                self.done.release()  # the previous step is finished
            self.go.acquire()
            lc.set_backend(*self.setting)
            yield batch
        self.done.release()


def start_reference(
    path: Path, batches: list, setting: tuple[int, bool], args: argparse.Namespace
) -> tuple:
    """Runs cyclegan.py in a thread (paused before its first step); returns (feeder, globals)."""
    script = path / "implementations" / "cyclegan" / "cyclegan.py"
    if not script.is_file():
        raise SystemExit(f"{path} is not a checkout of PyTorch-GAN (no {script})")
    if str(script.parent) not in sys.path:
        sys.path.insert(0, str(script.parent))
    feeder, scope = Feeder(batches, setting), {"__name__": "__main__", "__file__": str(script)}
    val = [{k: v for k, v in batches[0].items()}]
    loaders = iter([feeder, val])  # cyclegan.py builds its train loader, then its val loader
    argv = [str(script), "--n_epochs", "1", "--decay_epoch", "0", "--n_residual_blocks",
            str(args.blocks), "--img_height", str(args.size), "--img_width", str(args.size),
            "--sample_interval", "1000000", "--dataset_name", "lockstep"]  # fmt: skip

    def body() -> None:
        try:
            torch.manual_seed(args.seed)  # the script's own init draws from it
            exec(compile(script.read_text(), str(script), "exec"), scope)
        except BaseException as e:
            feeder.error = e
            feeder.started.set()
            feeder.done.release()

    real_loader, real_argv = torch.utils.data.DataLoader, sys.argv
    torch.utils.data.DataLoader = lambda *a, **kw: next(loaders)  # type: ignore[misc]
    sys.argv = argv
    try:
        threading.Thread(target=body, daemon=True).start()
        feeder.started.wait()  # built its networks, optimizers and loaders; waits for a batch
    finally:
        torch.utils.data.DataLoader, sys.argv = real_loader, real_argv
    if feeder.error is not None:
        raise feeder.error
    return feeder, scope


def step_reference(feeder: Feeder, scope: dict) -> lc.Snapshot:
    feeder.go.release()
    feeder.done.acquire()
    if feeder.error is not None:
        raise feeder.error
    return lc.snapshot({n: scope[n] for n in NETS}, {k: scope[k] for k in LOSSES})


def run(args: argparse.Namespace) -> list[lc.StepRow]:
    tmp = Path(tempfile.mkdtemp(prefix="cyclegan_lockstep_"))
    cfg = project_config(args, Path(args.data_dir) if args.data_dir else tmp / "data")
    _, batches = project_batches(cfg, args.steps)
    os.chdir(tmp)  # the script writes images/ and saved_models/ into the working directory
    settings = [(1, True), lc.drift_setting(args.drift, args.threads)]
    runs = [start_reference(Path(args.reference), batches, s, args) for s in settings]
    method = project_cyclegan(cfg, {n: runs[0][1][n] for n in NETS})
    method.start(args.epoch_steps)  # as the loop does: the LR rule's steps per epoch
    rows = []
    for step, batch in enumerate(batches):
        s1, s2 = (step_reference(f, scope) for f, scope in runs)
        lc.set_backend(1, True)
        losses = method.training_step(method.to_device(batch))
        method.after_step()
        p = lc.snapshot({n: getattr(method.model, n) for n in NETS}, losses)
        rows.append(lc.compare(step, s1, s2, p, LOSSES, rows[-1] if rows else None))
        if args.verbose:
            print(lc.table(rows[-1:]).splitlines()[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", required=True, help="checkout of PyTorch-GAN")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="R2's intra-op threads")
    parser.add_argument(
        "--drift",
        choices=["threads", "onednn"],
        default="threads",
        help="R2 = the reference on --threads threads, or on 1 without oneDNN",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epoch_steps", type=int, default=400, help="the built-in set's epoch")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    rows = run(args)
    print(f"cyclegan: {args.size} px, ngf=ndf=64, {args.blocks} blocks, {args.steps} steps; "
          f"gap = project - PyTorch-GAN (1 thread), drift = PyTorch-GAN ({drift_name(args)}) - PyTorch-GAN")  # fmt: skip
    print(lc.table(rows, args.every))
    print(lc.verdict(rows))


if __name__ == "__main__":
    main()
