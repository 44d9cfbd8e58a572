"""The CycleGAN training step and the epoch loop around it (logging, samples, checkpoints, eval).

The trainer gets every part built and passed in (networks, loss, optimizer factory, LR rule, logger,
evaluator); it never sees the Hydra config, so it can be driven from a notebook or a test as well.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import random
import signal
import threading
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
from cyclegan.checkpoint import (
    BEST,
    LAST,
    CheckpointError,
    link_or_copy,
    prune_checkpoints,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from cyclegan.config import CheckpointUnit, TrainerConfig
from cyclegan.data.sampling import EpochSampler
from cyclegan.data.transforms import to_image_range
from cyclegan.distributed import Place, gather_objects, rank_seed, reduce_step, wrap_ddp
from cyclegan.evaluation import lower_is_better
from cyclegan.logging import Logger
from cyclegan.losses import CycleGANLoss
from cyclegan.metrics import PairedEvaluator
from cyclegan.models import CycleGAN
from cyclegan.schedule import LRMultiplier

log = logging.getLogger(__name__)

AMP_DTYPES = {"32": None, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}
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


class GeneratorPair(nn.Module):
    """The training step's generator passes as one module call (see `Trainer.training_step`).

    Under DDP this pair is what gets wrapped: DDP averages gradients during the backward of each
    call of a wrapped module, and calling one wrapped module several times before one backward is
    fragile, so G_AB and G_BA are not wrapped one by one.
    """

    def __init__(self, G_AB: nn.Module, G_BA: nn.Module) -> None:
        super().__init__()
        self.G_AB, self.G_BA = G_AB, G_BA

    def forward(
        self, real_A: torch.Tensor, real_B: torch.Tensor, identity: bool
    ) -> tuple[torch.Tensor | None, ...]:
        """(fake_B, same_B, fake_A, same_A, recov_A, recov_B); same_* are None without identity."""
        n = real_A.shape[0]
        same_A = same_B = None
        if identity:
            fake_B, same_B = self.G_AB(torch.cat([real_A, real_B])).split(n)  # (B, C, H, W) each
            fake_A, same_A, recov_A = self.G_BA(torch.cat([real_B, real_A, fake_B])).split(n)
        else:
            fake_B = self.G_AB(real_A)
            fake_A, recov_A = self.G_BA(torch.cat([real_B, fake_B])).split(n)
        recov_B = self.G_AB(fake_A)
        return fake_B, same_B, fake_A, same_A, recov_A, recov_B


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
        monitor: str = "eval/psnr_AB",
        monitor_mode: str = "max",
        place: Place | None = None,
    ) -> None:
        self.model = model.to(device)
        if device.type == "cuda":
            # Training images all have one size, so timing cuDNN's algorithms once pays off. A
            # process-wide flag: the trainer is the one place that knows the device.
            torch.backends.cudnn.benchmark = options.cudnn_benchmark
        if options.channels_last:
            self.model.to(memory_format=torch.channels_last)
        # The training step calls these; compiled wrappers share the modules' parameters, so state
        # dicts keep their plain keys and checkpoints stay interchangeable with eager runs.
        nets = (model.G_AB, model.G_BA, model.D_A, model.D_B)
        self.nets = tuple(torch.compile(net) for net in nets) if options.compile else nets
        # DDP (trainer.strategy=ddp): the generator pair and each discriminator are wrapped, and
        # wrapping copies rank 0's weights to every rank. The generator update calls the plain
        # discriminators: frozen there, they only pass gradient to their input.
        self.place = place or Place()
        self.generators: nn.Module = GeneratorPair(self.nets[0], self.nets[1])
        self.discriminators: tuple[nn.Module, nn.Module] = (self.nets[2], self.nets[3])
        if self.place.distributed:
            self.generators = wrap_ddp(self.generators, device)
            self.discriminators = (
                wrap_ddp(self.nets[2], device),
                wrap_ddp(self.nets[3], device),
            )
            if not self.place.is_main:  # rank 0 alone evaluates and writes samples
                evaluator, sample_images = None, None
        self.amp_dtype = AMP_DTYPES[options.precision]
        # Loss scaling keeps fp16 gradients from underflowing; disabled (a pass-through) otherwise.
        self.scaler = torch.amp.GradScaler(device.type, enabled=options.precision == "16-mixed")
        self.criterion = criterion
        self.options = options
        self.device = device
        self.run_dir = Path(run_dir)
        self.logger = logger
        self.evaluator = evaluator
        self.sample_images = sample_images
        self.lr_rule = lr_rule
        # Saved with every checkpoint, e.g. the resolved config.
        self.checkpoint_meta = checkpoint_meta or {}
        self.opt_G = make_optimizer(model.generator_parameters())
        self.opt_D_A = make_optimizer(model.D_A.parameters())
        self.opt_D_B = make_optimizer(model.D_B.parameters())
        self.optimizers = {"G": self.opt_G, "D_A": self.opt_D_A, "D_B": self.opt_D_B}
        self.schedulers = {
            name: torch.optim.lr_scheduler.LambdaLR(opt, lr_rule)
            for name, opt in self.optimizers.items()
        }
        # Own RNG for the buffers, so their draws do not depend on data loading or init.
        # Per rank under DDP (rank 0 keeps seed + 1), so the ranks' buffers draw independently.
        self.buffer_rng = torch.Generator().manual_seed(rank_seed(seed, self.place.rank) + 1)
        self.buffer_A = ReplayBuffer(options.buffer_size, generator=self.buffer_rng)
        self.buffer_B = ReplayBuffer(options.buffer_size, generator=self.buffer_rng)
        self.state = TrainState()
        self.epoch_start_step = 0  # value of state.step when the current epoch began
        self.window: dict[str, float] = {}  # loss sums since the last log line
        self.last_logged: dict[str, float] = {}
        self.best: dict[str, float] = {}
        self.monitor, self.monitor_mode = monitor, monitor_mode  # which eval metric makes best.pt

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

        Instance norm works per sample, so a generator applied to a concatenated batch gives the
        same numbers as separate calls; the six generator passes of the seed become three calls:
            G_AB([A, B])           -> fake_B, same_B
            G_BA([B, A, fake_B])   -> fake_A, same_A, recov_A
            G_AB(fake_A)           -> recov_B
        """
        m, crit = self.model, self.criterion
        _, _, D_A, D_B = self.nets  # compiled wrappers when trainer.compile=true
        use_identity = crit.lambda_id > 0

        set_requires_grad([m.D_A, m.D_B], False)  # D gets no gradient from the generator loss
        self.opt_G.zero_grad(set_to_none=True)
        with self.autocast():
            # The three batched passes (GeneratorPair); one DDP call under trainer.strategy=ddp.
            fake_B, same_B, fake_A, same_A, recov_A, recov_B = self.generators(
                real_A, real_B, use_identity
            )
            if use_identity:
                loss_identity = (crit.identity(same_A, real_A) + crit.identity(same_B, real_B)) / 2
            else:
                loss_identity = torch.zeros((), device=real_A.device)
            loss_GAN = (crit.gan(D_B(fake_B), True) + crit.gan(D_A(fake_A), True)) / 2
            loss_cycle = (crit.cycle(recov_A, real_A) + crit.cycle(recov_B, real_B)) / 2
            loss_G = crit.generator_total(loss_GAN, loss_cycle, loss_identity)
        self.scaler.scale(loss_G).backward()
        self.scaler.step(self.opt_G)
        set_requires_grad([m.D_A, m.D_B], True)

        fake_A, fake_B = fake_A.float(), fake_B.float()  # the buffers keep full precision
        D_A, D_B = self.discriminators  # DDP-wrapped under trainer.strategy=ddp
        loss_D_A = self.discriminator_step(
            D_A, self.opt_D_A, real_A, self.buffer_A.push_and_pop(fake_A)
        )
        loss_D_B = self.discriminator_step(
            D_B, self.opt_D_B, real_B, self.buffer_B.push_and_pop(fake_B)
        )
        self.scaler.update()
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
        """One update of one discriminator; the same function serves D_A and D_B.

        Real and fake go through D in one call (instance norm is per sample, so the scores equal
        two separate calls), which halves the number of kernel launches.
        """
        optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            pred_real, pred_fake = D(torch.cat([real, fake.detach()])).split(real.shape[0])
            loss = self.criterion.discriminator(pred_real, pred_fake)
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        return loss.detach().float()

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision for the forward passes (trainer.precision); a no-op at 32."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    # ------------------------------------------------------------------ the loop

    def batches_per_epoch(self, loader: DataLoader) -> int:
        """Steps in one epoch: a full pass over the sampler, or `steps_per_epoch` if smaller."""
        n = len(loader.sampler)  # type: ignore[arg-type]
        sampler = loader.sampler
        if isinstance(sampler, EpochSampler):
            n = sampler.shard_size  # len() shrinks while skipping a resumed epoch's first samples
        full = math.ceil(n / (loader.batch_size or 1))
        limit = self.options.steps_per_epoch
        return full if limit is None else min(limit, full)

    def fit(self, loader: DataLoader, n_epochs: int) -> dict[str, Any]:
        """Train until `n_epochs` epochs are done (continuing from `self.state` after a resume).

        Returns the run's summary (final losses, final and best metrics). SIGTERM/SIGUSR1/SIGUSR2
        (on any rank under DDP) finish the current step, save a checkpoint and raise `Preempted`.
        """
        from tqdm.auto import tqdm  # only the loop needs it

        opts = self.options
        per_epoch = self.batches_per_epoch(loader)
        self.lr_rule.steps_per_epoch = per_epoch
        self._apply_lr()
        bar = tqdm(
            total=per_epoch * n_epochs,
            initial=min(self.state.step, per_epoch * n_epochs),
            disable=not opts.progress,
            dynamic_ncols=True,
            unit="step",
        )
        start = time.perf_counter()
        with _stop_on_signals() as stop:
            while self.state.epoch < n_epochs:
                epoch = self.state.epoch
                done_in_epoch = self.state.step - self.epoch_start_step
                bar.set_description(f"epoch {epoch + 1}/{n_epochs}")
                if isinstance(loader.sampler, EpochSampler):
                    loader.sampler.set_epoch(epoch, start=done_in_epoch * (loader.batch_size or 1))
                t_data = time.perf_counter()
                for batch in itertools.islice(loader, max(0, per_epoch - done_in_epoch)):
                    real_A = self._to_device(batch["A"])
                    real_B = self._to_device(batch["B"])
                    t_step = time.perf_counter()
                    # Under DDP the mean over ranks and a signal caught on any rank, from one
                    # all_reduce: every rank logs, stops or rejects a NaN at the same step.
                    losses, signum = reduce_step(
                        self.place, self.training_step(real_A, real_B), stop.signum, STOP_SIGNALS
                    )
                    losses["lr"] = self.opt_G.param_groups[0]["lr"]  # the rate this step used
                    self.state.step += 1
                    for scheduler in self.schedulers.values():
                        scheduler.step()  # per step at fractional epochs (see cyclegan.schedule)
                    self._check_finite(losses)
                    self._accumulate(losses, t_step - t_data, time.perf_counter() - t_step)
                    bar.update(1)
                    if opts.log_every and self.state.step % opts.log_every == 0:
                        last = self._flush_window(epoch)
                        bar.set_postfix(
                            G=f"{last['loss_G']:.3f}",
                            D=f"{last['loss_D']:.3f}",
                            cyc=f"{last['loss_cycle']:.3f}",
                        )
                    if opts.sample_every and self.state.step % opts.sample_every == 0:
                        self.save_samples()
                    if self._due(CheckpointUnit.step, self.state.step):
                        self.save_checkpoint()
                    if signum is not None:
                        path = self.save_checkpoint()
                        bar.close()
                        raise Preempted(signum, self.state.step, path, stop.previous.get(signum))
                    t_data = time.perf_counter()
                self.state.epoch += 1
                self.epoch_start_step = self.state.step
                if self.state.epoch == n_epochs:
                    break
                if opts.eval_every and self.state.epoch % opts.eval_every == 0:
                    self.evaluate()
                if self._due(CheckpointUnit.epoch, self.state.epoch):
                    self.save_checkpoint()
        bar.close()
        summary: dict[str, Any] = {"epoch": self.state.epoch, "step": self.state.step}
        summary.update({f"final/train/{k}": v for k, v in self.last_logged.items()})
        if opts.sample_every:
            self.save_samples()
        summary.update(self.evaluate())
        summary.update(self.best)
        summary["time/train_s"] = time.perf_counter() - start
        self.save_checkpoint()
        return summary

    def _to_device(self, images: torch.Tensor) -> torch.Tensor:
        fmt = torch.channels_last if self.options.channels_last else torch.contiguous_format
        return images.to(self.device, non_blocking=True, memory_format=fmt)

    def _apply_lr(self) -> None:
        """Set each optimizer's rate from the current rule at its scheduler's step count (after a
        resume the rule may differ from the saved one, e.g. a longer schedule)."""
        for sched in self.schedulers.values():
            for group, base in zip(sched.optimizer.param_groups, sched.base_lrs, strict=True):
                group["lr"] = base * self.lr_rule(sched.last_epoch)
            sched._last_lr = [group["lr"] for group in sched.optimizer.param_groups]

    def _due(self, unit: CheckpointUnit, count: int) -> bool:
        every = self.options.checkpoint_every
        return bool(every) and self.options.checkpoint_unit == unit and count % every == 0

    def _accumulate(self, losses: dict[str, float], data_s: float, step_s: float) -> None:
        for key, value in losses.items():
            self.window[key] = self.window.get(key, 0.0) + value
        self.window["_count"] = self.window.get("_count", 0.0) + 1
        self.window["_data_s"], self.window["_step_s"] = data_s, step_s

    def _flush_window(self, epoch: int) -> dict[str, float]:
        """Log the mean of each loss since the last log line (the window survives a resume)."""
        count = self.window.pop("_count")
        data_s, step_s = self.window.pop("_data_s"), self.window.pop("_step_s")
        self.last_logged = {k: v / count for k, v in self.window.items()}
        scalars = {f"train/{k}": v for k, v in self.last_logged.items()}
        scalars["time/step_s"] = step_s
        scalars["time/data_s"] = data_s
        self.logger.log_metrics(scalars, self.state.step, epoch)
        self.window = {}
        return self.last_logged

    def _check_finite(self, losses: dict[str, float]) -> None:
        """Stop before a NaN/inf can reach a checkpoint (the last saved one stays good)."""
        bad = [f"{k}={v}" for k, v in losses.items() if not math.isfinite(v)]
        if bad:
            raise NonFiniteLossError(
                f"non-finite loss at step {self.state.step}: {', '.join(bad)}; training stopped "
                "and the last checkpoint is intact: lower optim.lr, check the data, or resume=auto"
            )

    def evaluate(self) -> dict[str, float]:
        """Paired metrics against ground truth (if the dataset has it); tracks best values and
        writes best.pt when the monitored metric improves."""
        if self.evaluator is None:
            return {}
        metrics = self.evaluator(self.model.G_AB, self.model.G_BA)
        self.logger.log_metrics(metrics, self.state.step, self.state.epoch)
        for key, value in metrics.items():
            best_key = key.replace("eval/", "best/", 1)
            # FID/KID: lower is better; the monitored metric follows optimized_mode.
            lower = self.monitor_mode == "min" if key == self.monitor else lower_is_better(key)
            sign = -1.0 if lower else 1.0
            if sign * value > sign * self.best.get(best_key, -sign * math.inf):
                self.best[best_key] = value
                if key == self.monitor:
                    self.save_checkpoint(BEST, numbered=False)
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
        save_image(to_image_range(torch.cat(rows)).cpu(), path, nrow=real_A.shape[0], padding=2)
        self.logger.log_image("samples", path, self.state.step)
        return path

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: networks, optimizers, schedulers, replay
        buffers, RNG states, counters and the partly filled logging window."""
        return {
            "model": self.model.state_dict(),
            "optimizers": {k: v.state_dict() for k, v in self.optimizers.items()},
            "schedulers": {k: v.state_dict() for k, v in self.schedulers.items()},
            **self._rank_state(),  # "buffers" and "rng": this rank's (rank 0's in a file)
            "scaler": self.scaler.state_dict(),  # {} unless trainer.precision=16-mixed
            "epoch": self.state.epoch,
            "step": self.state.step,
            "epoch_start_step": self.epoch_start_step,
            "window": dict(self.window),
            "last_logged": dict(self.last_logged),
            "best": dict(self.best),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as exc:
            first = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
            raise CheckpointError(
                f"the checkpoint's networks do not fit this model ({first}); use the model settings it was trained with"
            ) from exc
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        for name, sched in self.schedulers.items():
            # Keep the current LR rule (a changed schedule.n_epochs applies from here on): a None
            # entry tells LambdaLR not to overwrite the rule with the saved one.
            sched.load_state_dict({**state["schedulers"][name], "lr_lambdas": [None]})
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self._load_rank_state(state)
        self.state = TrainState(epoch=state["epoch"], step=state["step"])
        self.epoch_start_step = state["epoch_start_step"]
        self.window = dict(state["window"])
        self.last_logged = dict(state["last_logged"])
        self.best = dict(state["best"])

    def _rank_state(self) -> dict[str, Any]:
        """The state that differs between DDP ranks: replay buffers and RNG states."""
        return {
            "buffers": {"A": self.buffer_A.state_dict(), "B": self.buffer_B.state_dict()},
            "rng": {**rng_state(), "buffer": self.buffer_rng.get_state()},
        }

    def _load_rank_state(self, state: dict[str, Any]) -> None:
        """This rank's buffers and RNG states: exact when the checkpoint was written by as many
        processes; otherwise ranks the file has no state for keep fresh ones (with a warning)."""
        saved = state.get("ranks") or [{"buffers": state["buffers"], "rng": state["rng"]}]
        if len(saved) != self.place.world_size and self.place.is_main:
            log.warning(
                "the checkpoint was written by %d process(es), this run has %d: ranks beyond %d "
                "start with empty replay buffers and fresh RNG states (training continues, not "
                "bit-exactly)",
                len(saved),
                self.place.world_size,
                len(saved),
            )
        if self.place.rank >= len(saved):
            return
        mine = saved[self.place.rank]
        self.buffer_A.load_state_dict(mine["buffers"]["A"])
        self.buffer_B.load_state_dict(mine["buffers"]["B"])
        set_rng_state(mine["rng"])
        self.buffer_rng.set_state(mine["rng"]["buffer"])

    def save_checkpoint(self, name: str = LAST, numbered: bool = True) -> Path:
        """Write the state atomically as `step_NNNNNNN.pt` (keeping the newest K) and `name`.

        Under DDP every rank calls this for numbered checkpoints (it gathers each rank's buffers
        and RNG states into `ranks`, for an exact resume) and rank 0 writes; `numbered=False`
        (best.pt, written from rank 0's evaluation) holds rank 0's state only.
        """
        directory = self.run_dir / "checkpoints"
        ranks = None
        if numbered and self.place.distributed:
            ranks = gather_objects(self.place, _to_cpu(self._rank_state()))
            if not self.place.is_main:
                return directory / name
        state = {**self.checkpoint_meta, **self.state_dict()}
        if ranks is not None:
            state["ranks"] = ranks
        if not numbered:
            return save_checkpoint(directory / name, state)
        path = save_checkpoint(directory / f"step_{self.state.step:07d}.pt", state)
        link_or_copy(path, directory / name)
        prune_checkpoints(directory, self.options.keep_last)
        return directory / name


class Preempted(Exception):
    """Training stopped on a signal after saving a checkpoint; `resume=auto` continues it.

    `previous_handler` is the handler the signal had before training (e.g. submitit's, which
    requeues the job on SIGUSR2); `hand_over()` runs it once the checkpoint is safe.
    """

    def __init__(
        self, signum: int, step: int, checkpoint: Path, previous_handler: Any = None
    ) -> None:
        super().__init__(
            f"stopped by signal {signal.Signals(signum).name} at step {step}; checkpoint saved to '{checkpoint}'; continue with resume=auto"
        )
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        self.previous_handler = previous_handler

    def hand_over(self) -> None:
        """Run the signal's earlier Python handler, if it had one (it may exit or requeue)."""
        if callable(self.previous_handler):
            self.previous_handler(self.signum, None)


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; raised before anything is saved."""


def _to_cpu(tree: Any) -> Any:
    if isinstance(tree, torch.Tensor):
        return tree.cpu()
    if isinstance(tree, dict):
        return {k: _to_cpu(v) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return type(tree)(_to_cpu(v) for v in tree)
    return tree


# SIGTERM: pre-emption (SLURM, Kubernetes, torchrun passing its own on); SIGUSR1: a common
# pre-emption notice; SIGUSR2: submitit's time-out notice, after which it requeues the job.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)


class _SignalFlag:
    signum: int | None = None
    previous: dict[int, Any]


@contextlib.contextmanager
def _stop_on_signals(
    signals: tuple[int, ...] = STOP_SIGNALS,
) -> Iterator[_SignalFlag]:
    """Turn SIGTERM/SIGUSR1/SIGUSR2 (a cluster's pre-emption notice) into a flag the loop checks
    after each step, so the step in flight completes and a consistent checkpoint is written. The
    handlers installed before (e.g. submitit's requeue) are kept in `previous` for `Preempted`."""
    flag = _SignalFlag()
    flag.previous = {}
    if threading.current_thread() is not threading.main_thread():
        yield flag  # handlers can only be installed from the main thread
        return

    def handler(signum: int, frame: Any) -> None:
        log.warning(
            "received %s: finishing the current step, then saving a checkpoint",
            signal.Signals(signum).name,
        )
        flag.signum = signum

    previous = {s: signal.signal(s, handler) for s in signals}
    flag.previous = previous
    try:
        yield flag
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
