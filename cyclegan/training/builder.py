"""Build a training run from the composed Hydra config and run it: the only module that reads `cfg`.

`train.py` is a thin Hydra entry point over `main(cfg)`; tests and notebooks call `train(cfg)` with
a config from `hydra.compose`. The stages read top to bottom: strategy and device, run directory
and seed, data, evaluation, the method (networks, losses, optimizers), the logger, the loop.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from cyclegan.checkpoints.file import check_resume_config, find_resume_checkpoint, load_checkpoint
from cyclegan.checkpoints.record import check_same_method, upgrade_saved_config
from cyclegan.config.preflight import metric_problem
from cyclegan.config.provenance import record as record_provenance
from cyclegan.data.builders import build_train_loader, load_test_images, prepare_dataset
from cyclegan.data.device_cache import DeviceBatches
from cyclegan.data.spec import DatasetSpec
from cyclegan.evaluation.evaluator import build_evaluator
from cyclegan.evaluation.protocol import evaluation_protocol
from cyclegan.evaluation.ranking import fid_enabled
from cyclegan.evaluation.report import format_evaluation
from cyclegan.files import write_json
from cyclegan.loggers.basic import NullLogger
from cyclegan.loggers.group import build_loggers, logger_nodes
from cyclegan.methods.base import Execution, TrainingMethod
from cyclegan.reports.run_report import write_report_safely
from cyclegan.runtime.device import configure_backends, resolve_device, seed_everything
from cyclegan.runtime.strategy import SingleProcess, build_strategy
from cyclegan.training.exit_policy import OutputDirError
from cyclegan.training.loop import TrainingLoop
from cyclegan.training.signals import Preempted
from cyclegan.training.validation import network_spec, validate

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> float | None:
    """Train as configured; returns `cfg.optimized_metric` (for Hydra sweepers).

    Under DDP (trainer.strategy) every process calls this; the process group lives for the call.
    """
    validate(cfg)
    warn_if_metric_missing(cfg)
    strategy = build_strategy(cfg.trainer.strategy, os.environ)
    device = strategy.device(resolve_device(cfg.trainer.device))
    with strategy.session(device):
        return _train(cfg, strategy, device)


def _train(cfg: DictConfig, strategy: SingleProcess, device: torch.device) -> float | None:
    run_dir = ensure_writable(strategy.shared_run_dir(Path(cfg.paths.output_dir)))
    seed_everything(strategy.seed(cfg.seed))  # rank 0: cfg.seed, as in a 1-process run
    configure_backends(device, cfg.trainer.cudnn_benchmark)

    spec: DatasetSpec = instantiate(cfg.dataset)
    with strategy.main_first():  # rank 0 renders the built-in dataset, the others then find it
        root = prepare_dataset(spec.root, spec.synthetic)
    loader = build_train_loader(
        spec, root, cfg.trainer.batch_size, cfg.trainer.num_workers, cfg.seed,
        strategy.rank, strategy.world_size,
    )  # fmt: skip
    evaluator, samples = strategy.on_main(lambda: build_evaluation(cfg, spec, root, device)) or (
        None,
        None,
    )
    method = build_method(cfg, device, strategy)
    if cfg.trainer.device_cache:
        loader = DeviceBatches.from_dataset(
            loader.dataset, loader.sampler, cfg.trainer.batch_size, device, method.memory_format
        )
    resolved: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)  # type: ignore[assignment]
    provenance = strategy.on_main(lambda: record_provenance(run_dir, device))
    logged = {**resolved, "provenance": provenance}  # not in checkpoints: a resume may differ
    logger = strategy.on_main(lambda: build_logger(cfg, run_dir, logged)) or NullLogger()
    status = "failed"
    try:  # from here on the logger is always finished, with the run's real status
        loop = TrainingLoop(
            method, OmegaConf.to_object(cfg.trainer), run_dir, logger, strategy, evaluator,
            samples, {"config": resolved}, cfg.optimized_metric, cfg.optimized_mode,
            paired_samples=spec.paired_test,
        )  # fmt: skip
        resume_if_asked(loop, cfg.resume, run_dir, resolved)
        log.info(
            "device %s%s | %s | %d steps/epoch x %d epochs | run dir %s",
            device, strategy.describe(cfg.trainer.batch_size), method.describe(),
            loop.batches_per_epoch(loader), cfg.schedule.n_epochs, run_dir,
        )  # fmt: skip
        summary = finish_summary(cfg, loop.fit(loader, cfg.schedule.n_epochs), loader, evaluator)
        strategy.on_main(lambda: write_json(run_dir / "summary.json", summary))
        logger.log_summary(summary)
        status = "finished"
    except Preempted:
        status = "preempted"
        raise
    finally:
        logger.finish(status)
        # Finished, failed or pre-empted: the run's page shows what there is.
        strategy.on_main(lambda: write_report_safely(run_dir, logged))
    return report(cfg, summary, evaluator, strategy)


def build_evaluation(
    cfg: DictConfig, spec: DatasetSpec, root: Path, device: torch.device
) -> tuple[Any, dict[str, torch.Tensor]]:
    """The evaluator (None where nothing can be scored) and the fixed images of sample grids."""
    n = cfg.trainer.n_samples
    fid = fid_enabled(cfg.trainer.eval_fid, spec.paired_test)
    scored = spec.paired_test or fid  # else the samples are all it needs
    limit = None if scored else n
    test = load_test_images(
        root, spec.preprocessing(), spec.paired_test, limit, spec.channels_A, spec.channels_B
    )
    samples = {"A": test.A[:n], "B": test.B[:n]}
    extractor = cfg.trainer.feature_extractor
    evaluator = build_evaluator(
        test, fid, device, cfg.trainer.inception_weights,
        instantiate(extractor) if extractor is not None else None,
    )  # fmt: skip
    return evaluator, samples


def build_logger(cfg: DictConfig, run_dir: Path, resolved: dict[str, Any]) -> Any:
    """The loggers (rank 0 alone logs): each `logger.<name>` entry, as one. Partial, so the
    resolved config reaches them as a plain dict (W&B stores it), not as a node that instantiate
    would walk into. A training that continues from a checkpoint continues its loggers' runs too
    (one W&B run, one TensorBoard run per training)."""
    resuming = find_resume_checkpoint(cfg.resume, run_dir / "checkpoints") is not None
    makers = {
        name: instantiate(node, _partial_=True) for name, node in logger_nodes(cfg.logger).items()
    }
    return build_loggers(makers, run_dir, resolved, resuming)


def build_method(
    cfg: DictConfig, device: torch.device, strategy: SingleProcess, **hooks: Any
) -> TrainingMethod:
    """The training algorithm (method group), which builds its own networks from the model group
    and takes its loss (loss group); the trainer group says how its steps execute and whether
    the generators' average is kept (trainer.ema_decay). `hooks` go to the method's constructor
    as they are (benchmarks: CycleGAN's `device_buffers`)."""
    execution = Execution(
        device=device,
        precision=cfg.trainer.precision,
        channels_last=cfg.trainer.channels_last,
        compile=cfg.trainer.compile,
        compile_mode=cfg.trainer.compile_mode,
        cuda_graphs=cfg.trainer.cuda_graphs,
        activation_checkpointing=cfg.trainer.activation_checkpointing,
        strategy=strategy,
    )
    settings = OmegaConf.to_container(cfg.method, resolve=True)
    method_class = get_class(str(settings.pop("_target_")))  # type: ignore[union-attr]
    method = method_class(
        **settings,  # the method's own keys (conf/method/<option>.yaml)
        networks=network_spec(cfg),
        loss=instantiate(cfg.loss),
        # _convert_="all": plain lists in the optimizer state, so checkpoints load with weights_only.
        optimizer=instantiate(cfg.optim, _convert_="all"),
        lr_rule=instantiate(cfg.schedule),
        channels=(cfg.dataset.channels_A, cfg.dataset.channels_B),
        execution=execution,
        seed=cfg.seed,
        **hooks,
    )
    if cfg.trainer.ema_decay:  # after the networks exist: the average starts from their weights
        method.average_generators(cfg.trainer.ema_decay, cfg.trainer.ema_warmup)
    return method


def finish_summary(
    cfg: DictConfig, summary: dict[str, Any], loader: Any, evaluator: Any
) -> dict[str, Any]:
    """The loop's summary plus data skips, baselines and which metric was optimized."""
    summary["data/skipped_images"] = len(loader.dataset.skipped)
    if evaluator is not None:
        summary.update(evaluator.baselines)
    summary["optimized_metric"] = cfg.optimized_metric
    summary["optimized_mode"] = cfg.optimized_mode  # sweep.py ranks by these, as best.pt did
    summary["eval_protocol"] = evaluation_protocol(evaluator)  # what the numbers were measured on
    return summary


def warn_if_metric_missing(cfg: DictConfig) -> None:
    """One line before training when the run will not compute its optimized metric (PSNR on a
    test set without ground truth, FID/KID with trainer.eval_fid=false), naming the fix. Missing
    Inception weights are reported where the evaluator is built, also before training. sweep.py
    refuses such sweeps outright (cyclegan.config.preflight); a single run goes on, e.g. for its samples.
    """
    problem = metric_problem(
        cfg.optimized_metric,
        paired_test=cfg.dataset.paired_test,
        eval_fid=fid_enabled(cfg.trainer.eval_fid, cfg.dataset.paired_test),
        inception=lambda: None,
        dataset=f"dataset={cfg.dataset.name}",
        consequence="this run would return None and write no best.pt",
    )
    if problem is not None:
        log.warning("%s", problem)


def report(
    cfg: DictConfig, summary: dict[str, Any], evaluator: Any, strategy: SingleProcess
) -> float | None:
    """The quality table (last, after the logger's closing lines) and the optimized metric."""
    if evaluator is not None:
        log.info(
            "translation quality on the test split:\n%s",
            format_evaluation(summary, evaluator.baselines),
        )
    value = summary.get(cfg.optimized_metric)
    if value is None and strategy.is_main:
        log.warning(
            "optimized_metric %r is not in the summary; returning None", cfg.optimized_metric
        )
    return value


def resume_if_asked(
    loop: TrainingLoop, resume: str | None, run_dir: Path, resolved: dict[str, Any]
) -> None:
    """Load the checkpoint `resume` points to (auto: this run's last.pt, if any) into the loop."""
    resume_from = find_resume_checkpoint(resume, run_dir / "checkpoints")
    if resume_from is None:
        if resume == "auto":
            log.info(
                "resume=auto: no checkpoint in %s yet, starting fresh", run_dir / "checkpoints"
            )
        return
    state = load_checkpoint(resume_from)
    check_same_method(state, loop.method, resume_from)
    check_resume_config(upgrade_saved_config(state.get("config", {})), resolved, resume_from)
    loop.load_state_dict(state)
    log.info("resumed from %s at epoch %d, step %d", resume_from, loop.epoch, loop.step)


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


def main(cfg: DictConfig) -> float | None:
    """`train` for the command line, under the exit policy (one line and a status per failure)."""
    from cyclegan.training.exit_policy import exit_on_failure

    with exit_on_failure():
        return train(cfg)
