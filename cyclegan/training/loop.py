"""The training loop: runs any training method and knows none.

Per step it moves the batch to the device, calls `method.training_step`, adds the losses to a
`LossWindow` on the device (no host read: on a GPU the host queues the next step while this one
runs) and steps the LR schedules; at its intervals it logs the window's means (one read, averaged
over the processes by the strategy), writes sample grids, evaluates (tracking the best value of
each metric and writing best.pt when the monitored one improves) and checkpoints. The NaN guard
reads the window's non-finite flag at each log line and before anything is evaluated or saved,
so a non-finite loss still never reaches a checkpoint, and the error names its step. A SIGTERM/SIGUSR1/
SIGUSR2 finishes the step in flight, saves a checkpoint and raises `Preempted`.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from cyclegan.checkpoints.file import BEST, LAST
from cyclegan.config.schema import CheckpointUnit, TrainerConfig
from cyclegan.data.sampling import EpochSampler
from cyclegan.evaluation.contact import (
    log_fixed_image_tables,
    translator_fns,
    write_fixed_translations,
)
from cyclegan.evaluation.ranking import improves, metric_mode
from cyclegan.evaluation.samples import sample_rows, save_sample_grid
from cyclegan.files import remove_stale_temporaries
from cyclegan.loggers.basic import Logger
from cyclegan.methods.base import TrainingMethod
from cyclegan.runtime.strategy import SingleProcess
from cyclegan.training.loss_window import LossWindow
from cyclegan.training.signals import STOP_SIGNALS, Preempted, SignalFlag, stop_on_signals
from cyclegan.training.state import save_training_state, unpack

Evaluator = Any  # callable(G_AB | None, G_BA | None) -> {"eval/...": value}, with .baselines


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; raised before anything is saved."""


class TrainingLoop:
    """Cadence of logging, samples, evaluation and checkpoints around a method's steps."""

    def __init__(
        self,
        method: TrainingMethod,
        options: TrainerConfig,
        run_dir: str | Path,
        logger: Logger,
        strategy: SingleProcess | None = None,
        evaluator: Evaluator | None = None,
        sample_images: Mapping[str, torch.Tensor] | None = None,
        checkpoint_meta: Mapping[str, Any] | None = None,
        monitor: str = "eval/psnr_AB",
        monitor_mode: str = "max",
        paired_samples: bool = False,
    ) -> None:
        """`paired_samples`: sample_images["B"][i] is the ground truth of sample_images["A"][i]."""
        self.method, self.options, self.logger = method, options, logger
        self.paired_samples = paired_samples
        self.run_dir = Path(run_dir)
        self.strategy = strategy or SingleProcess()
        self.evaluator, self.sample_images = evaluator, sample_images
        self.checkpoint_meta = dict(checkpoint_meta or {})  # e.g. the resolved config
        self.monitor, self.monitor_mode = monitor, monitor_mode  # which metric makes best.pt
        self.epoch = 0  # epochs completed
        self.step = 0  # optimizer steps completed
        self.epoch_start_step = 0  # value of `step` when the current epoch began
        self.window = LossWindow()  # loss sums since the last log line, on the device
        self.timings = {"_data_s": 0.0, "_step_s": 0.0}  # the last step's (host) times
        self.last_logged: dict[str, float] = {}
        self.best: dict[str, float] = {}
        # A kill -9 during a checkpoint write leaves a temporary file; only this run writes here.
        self.strategy.on_main(lambda: remove_stale_temporaries(self.run_dir / "checkpoints"))

    # ------------------------------------------------------------------ the loop

    def batches_per_epoch(self, loader: DataLoader) -> int:
        """Steps in one epoch: a full pass over the sampler, or `steps_per_epoch` if smaller."""
        n = len(loader.sampler)  # type: ignore[arg-type]
        if isinstance(loader.sampler, EpochSampler):
            n = loader.sampler.shard_size  # len() shrinks while a resumed epoch skips samples
        full = math.ceil(n / (loader.batch_size or 1))
        limit = self.options.steps_per_epoch
        return full if limit is None else min(limit, full)

    def fit(self, loader: DataLoader, n_epochs: int) -> dict[str, Any]:
        """Train until `n_epochs` epochs are done (continuing from the counters after a resume).

        Returns the run's summary (final losses, final and best metrics).
        """
        from tqdm.auto import tqdm  # only the loop needs it

        per_epoch = self.batches_per_epoch(loader)
        self.method.start(per_epoch)
        total = per_epoch * n_epochs
        bar = tqdm(
            total=total,
            initial=min(self.step, total),
            disable=not self.options.progress,
            dynamic_ncols=True,
            unit="step",
        )
        start = time.perf_counter()
        try:
            with stop_on_signals() as stop:
                while self.epoch < n_epochs:
                    bar.set_description(f"epoch {self.epoch + 1}/{n_epochs}")
                    self._run_epoch(loader, per_epoch, bar, stop)
                    self._end_epoch(n_epochs)
        finally:
            bar.close()
        return self._finish(time.perf_counter() - start)

    def _run_epoch(self, loader: DataLoader, per_epoch: int, bar: Any, stop: SignalFlag) -> None:
        done = self.step - self.epoch_start_step
        if isinstance(loader.sampler, EpochSampler):
            loader.sampler.set_epoch(self.epoch, start=done * (loader.batch_size or 1))
        t_data = time.perf_counter()
        for batch in itertools.islice(loader, max(0, per_epoch - done)):
            batch = self.method.to_device(batch)
            t_step = time.perf_counter()
            losses: dict[str, Any] = dict(self.method.training_step(batch))
            losses["lr"] = self.method.learning_rate()  # the rate this step used
            self.window.add(losses)
            # Under DDP a signal caught on any rank stops every rank after this same step.
            signum = self.strategy.agree_on_signal(stop.signum, STOP_SIGNALS, self.method.device)
            self.step += 1
            self.method.after_step()
            self.timings = {"_data_s": t_step - t_data, "_step_s": time.perf_counter() - t_step}
            bar.update(1)
            self._at_step_intervals(bar)
            if signum is not None:
                path = self.save_checkpoint()
                raise Preempted(signum, self.step, path, stop.previous.get(signum))
            t_data = time.perf_counter()

    def _at_step_intervals(self, bar: Any) -> None:
        opts = self.options
        if opts.log_every and self.step % opts.log_every == 0:
            last = self._flush_window()
            keys = [k for k in self.method.progress_keys if k in last]
            bar.set_postfix({k.removeprefix("loss_"): f"{last[k]:.3f}" for k in keys})
        if opts.sample_every and self.step % opts.sample_every == 0:
            self.save_samples()
        if self._due(CheckpointUnit.step, self.step):
            self.save_checkpoint()

    def _end_epoch(self, n_epochs: int) -> None:
        self.epoch += 1
        self.epoch_start_step = self.step
        if self.epoch == n_epochs:
            return
        if self.options.eval_every and self.epoch % self.options.eval_every == 0:
            self.evaluate()
        if self._due(CheckpointUnit.epoch, self.epoch):
            self.save_checkpoint()

    def _finish(self, train_s: float) -> dict[str, Any]:
        summary: dict[str, Any] = {"epoch": self.epoch, "step": self.step}
        summary.update({f"final/train/{k}": v for k, v in self.last_logged.items()})
        if self.options.sample_every:
            self.save_samples()
        summary.update(self.evaluate())
        summary.update(self.best)
        summary["time/train_s"] = train_s
        summary["eval/weights"] = self.method.scored_weights  # ema | raw: what was scored
        self.save_checkpoint()
        self.fixed_images(write_translations=True)  # for sweep.py's contact sheet
        return summary

    def _due(self, unit: CheckpointUnit, count: int) -> bool:
        every = self.options.checkpoint_every
        return bool(every) and self.options.checkpoint_unit == unit and count % every == 0

    # ------------------------------------------------------------------ losses

    def _flush_window(self) -> dict[str, float]:
        """Log the mean of each loss since the last log line (the window survives a resume).

        `time/step_s` is the last step's host time: with a GPU that never waits it measures
        issuing the step, and the steps' throughput is the log lines' spacing."""
        self._check_finite()
        self.last_logged = self.window.pop_means(self.strategy.reduce_window)
        scalars = {f"train/{k}": v for k, v in self.last_logged.items()}
        scalars["time/step_s"] = self.timings["_step_s"]
        scalars["time/data_s"] = self.timings["_data_s"]
        self.logger.log_metrics(scalars, self.step, self.epoch)
        return self.last_logged

    def _check_finite(self, collective: bool = True) -> None:
        """Stop before a NaN/inf can reach a checkpoint (the last saved one stays good): one read
        of the window's flag, at log lines and before evaluating or saving. `collective`: every
        process is here (log lines, numbered checkpoints), so they pool what they found and all
        stop together, each naming the step and the losses."""
        bad = self.window.first_nonfinite()
        step = None if bad is None else self.step - self.window.count + bad[0] + 1
        values = {} if bad is None else bad[1]
        if collective:
            step, values = self._pool_nonfinite(step, values)
        if step is None:
            return
        named = ", ".join(f"{k}={v}" for k, v in values.items())
        raise NonFiniteLossError(
            f"non-finite loss at step {step}: {named}; training stopped and the last checkpoint "
            "is intact: lower optim.lr, check the data, or resume=auto"
        )

    def _pool_nonfinite(
        self, step: int | None, values: dict[str, float]
    ) -> tuple[int | None, dict[str, float]]:
        """Every process's finding, from one reduction: [found, its step, its K loss values]
        summed over the processes (a NaN or inf survives the sum). The identity in one process."""
        keys = self.window.keys
        mine = (
            [1.0, float(step), *(values.get(k, 0.0) for k in keys)]
            if step
            else [0.0] * (2 + len(keys))
        )
        vector = torch.tensor(mine, dtype=torch.float64, device=self.method.device)
        total = (self.strategy.reduce_window(vector) * self.strategy.world_size).tolist()
        found = round(total[0])
        if found == 0:
            return None, {}
        if step is None:  # found elsewhere: its step if one process found it, else this one
            step = round(total[1]) if found == 1 else self.step
            values = {k: v for k, v in zip(keys, total[2:], strict=True) if not math.isfinite(v)}
        return step, values

    # ------------------------------------------------------------------ evaluation, samples

    def evaluate(self) -> dict[str, float]:
        """The evaluator's metrics (main rank only); tracks the best value of each and writes
        best.pt when the monitored metric improves."""
        if self.evaluator is None:
            return {}
        self._check_finite(collective=False)  # the main process alone evaluates
        translators = self.method.scored_translators()  # the average, with trainer.ema_decay
        metrics = self.evaluator(translators.get("AB"), translators.get("BA"))
        if self.options.eval_raw and self.method.ema is not None:  # the trained ones too
            trained = self.method.translators()
            raw = self.evaluator(trained.get("AB"), trained.get("BA"))
            metrics |= {k.replace("eval/", "eval/raw/", 1): v for k, v in raw.items()}
        self.logger.log_metrics(metrics, self.step, self.epoch)
        self.fixed_images(write_translations=False)
        for key, value in metrics.items():
            best_key = key.replace("eval/", "best/", 1)
            mode = metric_mode(key, self.monitor, self.monitor_mode)
            if improves(value, self.best.get(best_key), mode):
                self.best[best_key] = value
                if key == self.monitor:
                    self.save_checkpoint(BEST, numbered=False)
        return metrics

    def fixed_images(self, write_translations: bool) -> None:
        """The fixed test images as W&B tables (input, translation, reconstruction, ground truth,
        per-image PSNR/SSIM) or, at the end, as strips in contact/ for sweep.py (main rank)."""
        if self.sample_images is None:
            return
        fns = translator_fns(self.method.scored_translators(), self.method.device)
        args = (self.sample_images["A"], self.sample_images["B"], fns["AB"], fns.get("BA"))
        if write_translations:
            write_fixed_translations(self.run_dir, *args, self.paired_samples, self.step)
        else:
            log_fixed_image_tables(self.logger.log_table, *args, self.paired_samples, self.step)

    def save_samples(self) -> Path | None:
        """A grid of the fixed test images and their translations under samples/, logged."""
        if self.sample_images is None:
            return None
        rows = sample_rows(self.method.scored_translators(), self.sample_images, self.method.device)
        path = save_sample_grid(rows, self.run_dir / "samples" / f"step_{self.step:07d}.png")
        self.logger.log_image("samples", path, self.step)
        return path

    # ------------------------------------------------------------------ state

    def counters(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "step": self.step,
            "epoch_start_step": self.epoch_start_step,
            "window": {**self.window.state_dict(), **self.timings},
            "last_logged": dict(self.last_logged),
            "best": dict(self.best),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a checkpoint: the method's state, this rank's RNGs and the counters."""
        counters = unpack(state, self.method, self.strategy)
        self.epoch, self.step = counters["epoch"], counters["step"]
        self.epoch_start_step = counters["epoch_start_step"]
        window = counters["window"]
        self.window.load_state_dict(window)
        self.timings = {k: window.get(k, 0.0) for k in ("_data_s", "_step_s")}
        self.last_logged = dict(counters["last_logged"])
        self.best = dict(counters["best"])

    def save_checkpoint(self, name: str = LAST, numbered: bool = True) -> Path:
        """`step_NNNNNNN.pt` + `name` (every rank calls this), or `name` alone (rank 0's best.pt)."""
        self._check_finite(collective=numbered)  # every process saves numbered checkpoints
        return save_training_state(
            self.run_dir / "checkpoints",
            self.method,
            self.counters(),
            self.checkpoint_meta,
            self.strategy,
            name,
            self.step if numbered else None,
            self.options.keep_last,
        )
