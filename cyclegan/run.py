"""Build a training run from the composed Hydra config and run it: the only module that reads `cfg`.

`train.py` is a thin Hydra entry point over `train(cfg)`; tests and notebooks call `train` directly
with a config from `hydra.compose`.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from cyclegan.checkpoint import (
    CheckpointError,
    CheckpointWriteError,
    check_resume_config,
    find_resume_checkpoint,
    load_checkpoint,
)
from cyclegan.config import ConfigError, validate
from cyclegan.data.folder import (
    DatasetNotFoundError,
    ImageFolderDataset,
    PairedImageFolder,
    UnpairedImageDataset,
    UnreadableImageError,
    find_split_dirs,
)
from cyclegan.data.sampling import EpochSampler
from cyclegan.data.transforms import eval_transform, train_transform
from cyclegan.distributed import (
    Place,
    broadcast_object,
    device_for,
    main_first,
    rank_seed,
    resolve_place,
    session,
)
from cyclegan.evaluation import format_evaluation, with_distribution_metrics
from cyclegan.logging import NullLogger, write_json
from cyclegan.metrics import PairedEvaluator
from cyclegan.models import count_parameters
from cyclegan.trainer import NonFiniteLossError, Preempted, Trainer, resolve_device, seed_everything

log = logging.getLogger(__name__)


class OutputDirError(OSError):
    """The run directory cannot be created or written."""


# Errors caused by the user's input (config, data, files, disk): one line, no traceback, exit 2.
USER_ERRORS = (
    ConfigError,
    DatasetNotFoundError,
    UnreadableImageError,
    CheckpointError,
    CheckpointWriteError,
    OutputDirError,
    FileExistsError,
)
EXIT_USER_ERROR = 2
EXIT_NON_FINITE = 1
EXIT_PREEMPTED = 3  # a checkpoint was saved; rerun with resume=auto (e.g. after a SLURM requeue)


def prepare_dataset(dataset: DictConfig) -> Path:
    """The dataset folder, generating the built-in one on first use."""
    root = Path(dataset.root)
    if dataset.synthetic is not None:
        instantiate(dataset.synthetic).prepare(root)
    return root


def build_train_loader(
    dataset: DictConfig, trainer: DictConfig, root: Path, seed: int, place: Place | None = None
) -> DataLoader:
    data = UnpairedImageDataset(
        root,
        split="train",
        transform=train_transform(dataset.img_size, dataset.load_scale, dataset.flip),
        download_name=dataset.download_name,
        seed=seed,
        cache=dataset.cache,
        cache_max_gb=dataset.cache_max_gb,
        img_size=dataset.img_size,
        load_scale=dataset.load_scale,
        flip=dataset.flip,
    )
    # Order and augmentation are functions of (seed, epoch, index): a resumed run sees exactly
    # the samples it would have seen, whatever the number of workers. Under DDP each rank takes
    # its shard of that order (the same seed on every rank).
    place = place or Place()
    return DataLoader(
        data,
        batch_size=trainer.batch_size,
        sampler=EpochSampler(len(data), seed=seed, rank=place.rank, world_size=place.world_size),
        num_workers=trainer.num_workers,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=trainer.num_workers > 0,
        drop_last=False,
    )


def _stack(
    dataset: torch.utils.data.Dataset, key: str | None = None, limit: int | None = None
) -> torch.Tensor:
    n = len(dataset) if limit is None else min(limit, len(dataset))  # type: ignore[arg-type]
    items = [dataset[i] for i in range(n)]
    return torch.stack([it[key] if key else it for it in items])


def build_evaluation(
    dataset: DictConfig, root: Path, n_samples: int
) -> tuple[PairedEvaluator | None, tuple[torch.Tensor, torch.Tensor]]:
    """The paired evaluator (datasets with ground truth only) and fixed images for sample grids."""
    transform = eval_transform(dataset.img_size)
    try:
        test_A_dir, test_B_dir = find_split_dirs(root, "test")
    except FileNotFoundError:
        test_A_dir, test_B_dir = find_split_dirs(root, "train")  # no test split: sample from train
    if not dataset.paired_test:
        samples = (
            _stack(ImageFolderDataset(test_A_dir, transform), limit=n_samples),
            _stack(ImageFolderDataset(test_B_dir, transform), limit=n_samples),
        )
        return None, samples
    pairs = PairedImageFolder(test_A_dir, test_B_dir, transform)
    test_A, test_B = _stack(pairs, "A"), _stack(pairs, "B")
    train_A_dir, train_B_dir = find_split_dirs(root, "train")
    mean_A = _stack(ImageFolderDataset(train_A_dir, transform)).mean(0, keepdim=True)
    mean_B = _stack(ImageFolderDataset(train_B_dir, transform)).mean(0, keepdim=True)
    evaluator = PairedEvaluator(test_A, test_B, mean_A, mean_B)
    return evaluator, (test_A[:n_samples], test_B[:n_samples])


def train(cfg: DictConfig) -> float | None:
    """Train one CycleGAN as configured; returns `cfg.optimized_metric` (for Hydra sweepers).

    Under DDP (trainer.strategy) every process calls this; the process group lives for the call.
    """
    validate(cfg)
    place = resolve_place(cfg.trainer.strategy, os.environ)
    device = device_for(place, resolve_device(cfg.trainer.device))
    with session(place, device):
        return _train(cfg, place, device)


def shared_run_dir(place: Place, own: Path) -> Path:
    """Rank 0's output directory on every rank (Hydra stamps each process's directory with its
    own start time). A directory Hydra made for another rank that holds nothing but Hydra's own
    files is removed, so a torchrun job leaves one run directory."""
    run_dir = Path(broadcast_object(place, str(own)))
    hydra_only = own.is_dir() and all(
        p.name == ".hydra" or p.suffix == ".log" for p in own.iterdir()
    )
    if run_dir != own and hydra_only:
        shutil.rmtree(own, ignore_errors=True)
    return run_dir


def _train(cfg: DictConfig, place: Place, device: torch.device) -> float | None:
    run_dir = ensure_writable(shared_run_dir(place, Path(cfg.paths.output_dir)))
    seed_everything(rank_seed(cfg.seed, place.rank))  # rank 0: cfg.seed, as in a 1-process run

    with main_first(place):  # rank 0 renders the built-in dataset, the others then find it
        root = prepare_dataset(cfg.dataset)
    loader = build_train_loader(cfg.dataset, cfg.trainer, root, cfg.seed, place)
    evaluator, samples = None, None
    if place.is_main:  # rank 0 alone evaluates and writes samples
        evaluator, samples = build_evaluation(cfg.dataset, root, cfg.trainer.n_samples)
    if cfg.trainer.eval_fid and place.is_main:  # opt-in: FID/KID need Inception and its weights
        evaluator = with_distribution_metrics(
            evaluator, root, cfg.dataset.img_size, device, cfg.trainer.inception_weights
        )

    model = instantiate(cfg.model)
    criterion = instantiate(cfg.loss)
    # _convert_="all": plain lists in the optimizer state, so checkpoints load with weights_only.
    make_optimizer = instantiate(cfg.optim, _convert_="all")
    lr_rule = instantiate(cfg.schedule)
    resolved: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)  # type: ignore[assignment]
    # Rank 0 alone logs. Partial, so the resolved config reaches the logger as a plain dict (W&B
    # stores it), not as a node that instantiate would walk into.
    logger = (
        instantiate(cfg.logger, _partial_=True)(run_dir=run_dir, config=resolved)
        if place.is_main
        else NullLogger()
    )
    status = "failed"
    try:  # from here on the logger is always finished, with the run's real status
        trainer = Trainer(
            model,
            criterion,
            make_optimizer,
            lr_rule,
            options=OmegaConf.to_object(cfg.trainer),
            device=device,
            run_dir=run_dir,
            logger=logger,
            evaluator=evaluator,
            sample_images=samples,
            seed=cfg.seed,
            checkpoint_meta={"config": resolved},
            monitor=cfg.optimized_metric,
            monitor_mode=cfg.optimized_mode,
            place=place,
        )
        resume_if_asked(trainer, cfg.resume, run_dir, resolved)
        log.info(
            "device %s%s | G_AB %.2fM params, D_A %.2fM | %d steps/epoch x %d epochs | run dir %s",
            device,
            f" x {place.world_size} processes (DDP, global batch "
            f"{cfg.trainer.batch_size * place.world_size})"
            if place.distributed
            else "",
            count_parameters(model.G_AB) / 1e6,
            count_parameters(model.D_A) / 1e6,
            trainer.batches_per_epoch(loader),
            cfg.schedule.n_epochs,
            run_dir,
        )
        summary = trainer.fit(loader, cfg.schedule.n_epochs)
        summary["data/skipped_images"] = len(loader.dataset.skipped)  # type: ignore[attr-defined]
        if evaluator is not None:
            summary.update(evaluator.baselines)
        summary["optimized_metric"] = cfg.optimized_metric
        if place.is_main:
            write_json(run_dir / "summary.json", summary)
        logger.log_summary(summary)
        status = "finished"
    except Preempted:
        status = "preempted"
        raise
    finally:
        logger.finish(status)
    if evaluator is not None:  # last, after the logger's own closing lines
        log.info(
            "translation quality on the test split:\n%s",
            format_evaluation(summary, evaluator.baselines),
        )
    value = summary.get(cfg.optimized_metric)
    if value is None and place.is_main:
        log.warning(
            "optimized_metric %r is not in the summary; returning None", cfg.optimized_metric
        )
    return value


def resume_if_asked(
    trainer: Trainer, resume: str | None, run_dir: Path, resolved: dict[str, Any]
) -> None:
    """Load the checkpoint `resume` points to (auto: this run's last.pt, if any) into `trainer`."""
    resume_from = find_resume_checkpoint(resume, run_dir / "checkpoints")
    if resume_from is None:
        if resume == "auto":
            log.info(
                "resume=auto: no checkpoint in %s yet, starting fresh", run_dir / "checkpoints"
            )
        return
    state = load_checkpoint(resume_from)
    check_resume_config(state.get("config", {}), resolved, resume_from)
    trainer.load_state_dict(state)
    log.info(
        "resumed from %s at epoch %d, step %d", resume_from, trainer.state.epoch, trainer.state.step
    )


def main(cfg: DictConfig) -> float | None:
    """`train` for the command line: input errors end the process with one line and exit status 2."""
    try:
        return train(cfg)
    except USER_ERRORS as exc:
        log.error("%s", exc)
        raise _stop(exc, EXIT_USER_ERROR) from None
    except NonFiniteLossError as exc:
        log.error("%s", exc)
        raise _stop(exc, EXIT_NON_FINITE) from None
    except Preempted as exc:
        log.warning("%s", exc)
        exc.hand_over()  # e.g. submitit's requeue on SIGUSR2, now that the checkpoint is saved
        raise SystemExit(EXIT_PREEMPTED) from None


def _stop(exc: Exception, code: int) -> BaseException:
    """What ends a job that failed on its input: SystemExit(code) for a single run; in a multirun
    the error itself, so the launcher marks this job failed and still runs the others (an exit
    would end the whole sweep)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    in_multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    return exc if in_multirun else SystemExit(code)


def ensure_writable(run_dir: Path) -> Path:
    """Fail at once, not after an hour of training, if the run directory cannot be written."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write_test.{os.getpid()}"  # per process: DDP ranks check at once
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise OutputDirError(
            f"cannot write to the output folder '{run_dir}' ({exc.strerror or exc}); choose another "
            "with hydra.run.dir=... (or paths.output_dir) or fix its permissions"
        ) from exc
    return run_dir
