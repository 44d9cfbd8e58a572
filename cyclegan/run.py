"""Build a training run from the composed Hydra config and run it: the only module that reads `cfg`.

`train.py` is a thin Hydra entry point over `train(cfg)`; tests and notebooks call `train` directly
with a config from `hydra.compose`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from cyclegan.checkpoint import CheckpointError
from cyclegan.config import ConfigError, validate
from cyclegan.data.folder import (
    DatasetNotFoundError,
    ImageFolderDataset,
    PairedImageFolder,
    UnpairedImageDataset,
    UnreadableImageError,
    find_split_dirs,
)
from cyclegan.data.transforms import eval_transform, train_transform
from cyclegan.logging import write_json
from cyclegan.metrics import PairedEvaluator, format_report
from cyclegan.models import count_parameters
from cyclegan.trainer import Trainer, resolve_device, seed_everything

log = logging.getLogger(__name__)

# Errors caused by the user's input (config, data, files): shown as one line, no traceback.
USER_ERRORS = (
    ConfigError,
    DatasetNotFoundError,
    UnreadableImageError,
    CheckpointError,
    FileExistsError,
)
EXIT_USER_ERROR = 2


def prepare_dataset(dataset: DictConfig) -> Path:
    """The dataset folder, generating the built-in one on first use."""
    root = Path(dataset.root)
    if dataset.synthetic is not None:
        instantiate(dataset.synthetic).prepare(root)
    return root


def build_train_loader(
    dataset: DictConfig, trainer: DictConfig, root: Path, seed: int
) -> DataLoader:
    data = UnpairedImageDataset(
        root,
        split="train",
        transform=train_transform(dataset.img_size, dataset.load_scale, dataset.flip),
        download_name=dataset.download_name,
    )
    return DataLoader(
        data,
        batch_size=trainer.batch_size,
        shuffle=True,
        num_workers=trainer.num_workers,
        generator=torch.Generator().manual_seed(seed),
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
    """Train one CycleGAN as configured; returns `cfg.optimized_metric` (for Hydra sweepers)."""
    validate(cfg)
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)
    device = resolve_device(cfg.trainer.device)

    root = prepare_dataset(cfg.dataset)
    loader = build_train_loader(cfg.dataset, cfg.trainer, root, cfg.seed)
    evaluator, samples = build_evaluation(cfg.dataset, root, cfg.trainer.n_samples)

    model = instantiate(cfg.model)
    criterion = instantiate(cfg.loss)
    make_optimizer = instantiate(
        cfg.optim, _convert_="all"
    )  # plain lists: checkpoints stay weights_only
    lr_rule = instantiate(cfg.schedule)
    logger = instantiate(cfg.logger, run_dir=run_dir)
    resolved: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)  # type: ignore[assignment]
    log.info(
        "device %s | G_AB %.2fM params, D_A %.2fM | %d train steps/epoch x %d epochs | run dir %s",
        device,
        count_parameters(model.G_AB) / 1e6,
        count_parameters(model.D_A) / 1e6,
        len(loader)
        if cfg.trainer.steps_per_epoch is None
        else min(len(loader), cfg.trainer.steps_per_epoch),
        cfg.schedule.n_epochs,
        run_dir,
    )
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
    )
    status = "failed"
    try:
        summary = trainer.fit(loader, cfg.schedule.n_epochs)
        if evaluator is not None:
            summary.update(evaluator.baselines)
            log.info(
                "translation quality on the test split against ground truth:\n%s",
                format_report(summary, evaluator.baselines),
            )
        summary["optimized_metric"] = cfg.optimized_metric
        write_json(run_dir / "summary.json", summary)
        logger.log_summary(summary)
        status = "finished"
    finally:
        logger.finish(status)
    value = summary.get(cfg.optimized_metric)
    if value is None:
        log.warning(
            "optimized_metric %r is not in the summary; returning None", cfg.optimized_metric
        )
    return value


def main(cfg: DictConfig) -> float | None:
    """`train` for the command line: input errors end the process with one line and exit status 2."""
    try:
        return train(cfg)
    except USER_ERRORS as exc:
        log.error("%s", exc)
        raise SystemExit(EXIT_USER_ERROR) from None
