"""The CycleGAN training step and the epoch loop around it (logging, samples, checkpoints, eval).

The trainer gets every part built and passed in (networks, loss, optimizer factory, LR rule, logger,
evaluator); it never sees the Hydra config, so it can be driven from a notebook or a test as well.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision.utils import save_image

from cyclegan.buffer import ReplayBuffer
from cyclegan.checkpoint import save_checkpoint
from cyclegan.config import TrainerConfig
from cyclegan.logging import Logger
from cyclegan.losses import CycleGANLoss
from cyclegan.metrics import PairedEvaluator, to_unit
from cyclegan.models import CycleGAN
from cyclegan.schedule import LRMultiplier

log = logging.getLogger(__name__)

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


def resolve_device(name: str) -> torch.device:
    """`auto` -> CUDA if present, else Apple MPS, else CPU; anything else as given."""
    if name != "auto":
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(
                f"trainer.device={name} but CUDA is not available; use trainer.device=auto or cpu"
            )
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices), so a run is reproducible from `seed`."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_requires_grad(modules: Iterable[nn.Module], flag: bool) -> None:
    for module in modules:
        for p in module.parameters():
            p.requires_grad_(flag)


@dataclass
class TrainState:
    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps completed


class Trainer:
    """Owns the optimizers, schedulers and replay buffers of one CycleGAN run."""

    def __init__(
        self,
        model: CycleGAN,
        criterion: CycleGANLoss,
        make_optimizer: OptimizerFactory,
        lr_rule: LRMultiplier,
        options: TrainerConfig,
        device: torch.device,
        run_dir: str | Path,
        logger: Logger,
        evaluator: PairedEvaluator | None = None,
        sample_images: tuple[torch.Tensor, torch.Tensor] | None = None,
        seed: int = 0,
        checkpoint_meta: dict[str, Any] | None = None,
    ) -> None:
        self.model = model.to(device)
        self.criterion = criterion
        self.options = options
        self.device = device
        self.run_dir = Path(run_dir)
        self.logger = logger
        self.evaluator = evaluator
        self.sample_images = sample_images
        self.lr_rule = lr_rule
        self.checkpoint_meta = (
            checkpoint_meta or {}
        )  # e.g. the resolved config, saved with each checkpoint
        self.opt_G = make_optimizer(model.generator_parameters())
        self.opt_D_A = make_optimizer(model.D_A.parameters())
        self.opt_D_B = make_optimizer(model.D_B.parameters())
        self.optimizers = {"G": self.opt_G, "D_A": self.opt_D_A, "D_B": self.opt_D_B}
        self.schedulers = {
            name: torch.optim.lr_scheduler.LambdaLR(opt, lr_rule)
            for name, opt in self.optimizers.items()
        }
        # Own RNG for the buffers, so their draws do not depend on data loading or init.
        self.buffer_rng = torch.Generator().manual_seed(seed + 1)
        self.buffer_A = ReplayBuffer(options.buffer_size, generator=self.buffer_rng)
        self.buffer_B = ReplayBuffer(options.buffer_size, generator=self.buffer_rng)
        self.state = TrainState()
        self.best: dict[str, float] = {}

    # ------------------------------------------------------------------ the algorithm

    def training_step(self, real_A: torch.Tensor, real_B: torch.Tensor) -> dict[str, torch.Tensor]:
        """One CycleGAN update of the generators, then of each discriminator.

        Generators (D_A, D_B frozen), each term averaged over the two directions as in the seed:
            loss_identity = (|G_BA(A) - A|_1 + |G_AB(B) - B|_1) / 2
            loss_GAN      = (gan(D_B(G_AB(A)), real) + gan(D_A(G_BA(B)), real)) / 2
            loss_cycle    = (|G_BA(G_AB(A)) - A|_1 + |G_AB(G_BA(B)) - B|_1) / 2
            loss_G        = loss_GAN + lambda_cyc * loss_cycle + lambda_id * loss_identity
        Discriminators, on real images and on a fake drawn from the replay buffer:
            loss_D_X = (gan(D_X(real_X), real) + gan(D_X(buffer_X(fake_X)), fake)) / 2

        Instance norm works per sample, so G_AB([A, B]) computes fake_B and the identity image of B
        in one call (same numbers as two calls, one pass over the weights).
        """
        m, crit = self.model, self.criterion
        n = real_A.shape[0]
        use_identity = crit.lambda_id > 0

        set_requires_grad([m.D_A, m.D_B], False)  # D gets no gradient from the generator loss
        self.opt_G.zero_grad(set_to_none=True)
        if use_identity:
            fake_B, same_B = m.G_AB(torch.cat([real_A, real_B])).split(n)  # (B, C, H, W) each
            fake_A, same_A = m.G_BA(torch.cat([real_B, real_A])).split(n)
            loss_identity = (crit.identity(same_A, real_A) + crit.identity(same_B, real_B)) / 2
        else:
            fake_B, fake_A = m.G_AB(real_A), m.G_BA(real_B)
            loss_identity = torch.zeros((), device=real_A.device)
        loss_GAN = (crit.gan(m.D_B(fake_B), True) + crit.gan(m.D_A(fake_A), True)) / 2
        loss_cycle = (crit.cycle(m.G_BA(fake_B), real_A) + crit.cycle(m.G_AB(fake_A), real_B)) / 2
        loss_G = crit.generator_total(loss_GAN, loss_cycle, loss_identity)
        loss_G.backward()
        self.opt_G.step()
        set_requires_grad([m.D_A, m.D_B], True)

        loss_D_A = self.discriminator_step(
            m.D_A, self.opt_D_A, real_A, self.buffer_A.push_and_pop(fake_A)
        )
        loss_D_B = self.discriminator_step(
            m.D_B, self.opt_D_B, real_B, self.buffer_B.push_and_pop(fake_B)
        )
        return {
            "loss_G": loss_G.detach(),
            "loss_GAN": loss_GAN.detach(),
            "loss_cycle": loss_cycle.detach(),
            "loss_identity": loss_identity.detach(),
            "loss_D_A": loss_D_A,
            "loss_D_B": loss_D_B,
            "loss_D": (loss_D_A + loss_D_B) / 2,
        }

    def discriminator_step(
        self, D: nn.Module, optimizer: torch.optim.Optimizer, real: torch.Tensor, fake: torch.Tensor
    ) -> torch.Tensor:
        """One update of one discriminator; the same function serves D_A and D_B."""
        optimizer.zero_grad(set_to_none=True)
        loss = self.criterion.discriminator(D(real), D(fake.detach()))
        loss.backward()
        optimizer.step()
        return loss.detach()

    # ------------------------------------------------------------------ the loop

    def _batches(self, loader: DataLoader) -> Iterator[tuple[int, dict[str, torch.Tensor]]]:
        limit = self.options.steps_per_epoch
        for i, batch in enumerate(loader):
            if limit is not None and i >= limit:
                return
            yield i, batch

    def steps_per_epoch(self, loader: DataLoader) -> int:
        limit = self.options.steps_per_epoch
        return len(loader) if limit is None else min(limit, len(loader))

    def fit(self, loader: DataLoader, n_epochs: int) -> dict[str, Any]:
        """Train until `n_epochs` epochs are done; returns the run's summary (final and best metrics)."""
        from tqdm.auto import tqdm  # only the loop needs it

        opts = self.options
        per_epoch = self.steps_per_epoch(loader)
        total = per_epoch * n_epochs
        bar = tqdm(
            total=total,
            initial=self.state.step,
            disable=not opts.progress,
            dynamic_ncols=True,
            unit="step",
        )
        start = time.perf_counter()
        last: dict[str, float] = {}
        while self.state.epoch < n_epochs:
            epoch = self.state.epoch
            bar.set_description(f"epoch {epoch + 1}/{n_epochs}")
            t_data = time.perf_counter()
            sums: dict[str, float] = {}
            count = 0
            for _, batch in self._batches(loader):
                real_A = batch["A"].to(self.device, non_blocking=True)
                real_B = batch["B"].to(self.device, non_blocking=True)
                t_step = time.perf_counter()
                losses = self.training_step(real_A, real_B)
                self.state.step += 1
                t_end = time.perf_counter()
                for key, value in losses.items():
                    sums[key] = sums.get(key, 0.0) + float(value)
                count += 1
                bar.update(1)
                if opts.log_every and self.state.step % opts.log_every == 0:
                    last = {k: v / count for k, v in sums.items()}
                    self._check_finite(last)
                    scalars = {f"train/{k}": v for k, v in last.items()}
                    scalars["train/lr"] = self.opt_G.param_groups[0]["lr"]
                    scalars["time/step_s"] = t_end - t_step
                    scalars["time/data_s"] = t_step - t_data
                    self.logger.log_metrics(scalars, self.state.step, epoch)
                    bar.set_postfix(
                        G=f"{last['loss_G']:.3f}",
                        D=f"{last['loss_D']:.3f}",
                        cyc=f"{last['loss_cycle']:.3f}",
                    )
                    sums, count = {}, 0
                if opts.sample_every and self.state.step % opts.sample_every == 0:
                    self.save_samples()
                t_data = time.perf_counter()
            self.state.epoch += 1
            for scheduler in self.schedulers.values():
                scheduler.step()
            done = self.state.epoch == n_epochs
            if opts.eval_every and self.state.epoch % opts.eval_every == 0 and not done:
                self.evaluate()
            if opts.checkpoint_every and self.state.epoch % opts.checkpoint_every == 0 and not done:
                self.save("last.pt")
        bar.close()
        summary: dict[str, Any] = {"epoch": self.state.epoch, "step": self.state.step}
        summary.update({f"final/train/{k}": v for k, v in last.items()})
        if opts.sample_every:
            self.save_samples()
        summary.update(self.evaluate())
        summary.update(self.best)
        summary["time/train_s"] = time.perf_counter() - start
        self.save("last.pt")
        return summary

    @staticmethod
    def _check_finite(losses: dict[str, float]) -> None:
        bad = [k for k, v in losses.items() if not math.isfinite(v)]
        if bad:
            raise FloatingPointError(
                f"non-finite {', '.join(bad)}; lower optim.lr or check the input data"
            )

    def evaluate(self) -> dict[str, float]:
        """Paired metrics against ground truth (if the dataset has it); tracks the best values."""
        if self.evaluator is None:
            return {}
        metrics = self.evaluator(self.model.G_AB, self.model.G_BA)
        self.logger.log_metrics(metrics, self.state.step, self.state.epoch)
        for key, value in metrics.items():
            best_key = key.replace("eval/", "best/", 1)
            if value > self.best.get(best_key, -math.inf):  # PSNR and SSIM: higher is better
                self.best[best_key] = value
        return metrics

    @torch.no_grad()
    def save_samples(self) -> Path | None:
        """A grid with rows real A, fake B, real B, fake A, saved under samples/ and logged."""
        if self.sample_images is None:
            return None
        real_A, real_B = (x.to(self.device) for x in self.sample_images)
        G_AB, G_BA = self.model.G_AB, self.model.G_BA
        modes = (G_AB.training, G_BA.training)
        G_AB.eval()
        G_BA.eval()
        rows = [real_A, G_AB(real_A), real_B, G_BA(real_B)]
        G_AB.train(modes[0])
        G_BA.train(modes[1])
        path = self.run_dir / "samples" / f"step_{self.state.step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(to_unit(torch.cat(rows)).cpu(), path, nrow=real_A.shape[0], padding=2)
        self.logger.log_image("samples", path, self.state.step)
        return path

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue: networks, optimizers, schedulers, buffers, counters."""
        return {
            "model": self.model.state_dict(),
            "optimizers": {k: v.state_dict() for k, v in self.optimizers.items()},
            "schedulers": {k: v.state_dict() for k, v in self.schedulers.items()},
            "buffers": {"A": self.buffer_A.state_dict(), "B": self.buffer_B.state_dict()},
            "epoch": self.state.epoch,
            "step": self.state.step,
            "best": dict(self.best),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        for name, sched in self.schedulers.items():
            sched.load_state_dict(state["schedulers"][name])
        self.buffer_A.load_state_dict(state["buffers"]["A"])
        self.buffer_B.load_state_dict(state["buffers"]["B"])
        self.state = TrainState(epoch=state["epoch"], step=state["step"])
        self.best = dict(state.get("best", {}))

    def save(self, name: str) -> Path:
        return save_checkpoint(
            self.run_dir / "checkpoints" / name, {**self.checkpoint_meta, **self.state_dict()}
        )
