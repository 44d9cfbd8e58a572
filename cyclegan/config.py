"""Typed schemas for the Hydra config, and the value checks types cannot express.

The dataclasses are registered in Hydra's ConfigStore as `schema`, the first entry of
`conf/config.yaml`'s defaults list, so every YAML option merges into a typed node: a misspelt key
(`model.n_residual_block=6`) or a wrong type (`model.ngf=wide`) fails at composition, naming the key.
`validate()` then rejects values that are well-typed but unusable, before any data or model is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import II, MISSING, DictConfig

from cyclegan.losses import GanMode
from cyclegan.models import Variant
from cyclegan.schedule import Policy


class CheckpointUnit(StrEnum):
    epoch = "epoch"
    step = "step"


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key and the fix."""


@dataclass
class ModelConfig:
    _target_: str = "cyclegan.models.CycleGAN"
    variant: Variant = Variant.resnet
    n_residual_blocks: int = 9
    ngf: int = 64  # generator width (channels after the first conv)
    ndf: int = 64  # discriminator width
    channels: int = 3
    init_std: float = 0.02


@dataclass
class SyntheticConfig:
    """Parameters of the built-in dataset, generated into `dataset.root` on first use."""

    _target_: str = "cyclegan.data.synthetic.SyntheticLandscapes"
    n_train: int = 400
    n_test: int = 50
    size: int = II("..img_size")
    seed: int = 0


@dataclass
class DatasetConfig:
    name: str = MISSING
    root: str = MISSING
    img_size: int = 256  # training crop; images are first resized to load_scale * img_size
    load_scale: float = 1.12
    flip: bool = True
    # Name for `python -m cyclegan.data.download`, quoted when the folder is missing.
    download_name: str | None = None
    # testA/testB hold the same scenes with the same file names: PSNR/SSIM against ground truth.
    paired_test: bool = False
    synthetic: SyntheticConfig | None = None
    # Decode and resize every training image once and keep it in memory as uint8 (falls back to
    # reading files, with a warning, if that needs more than cache_max_gb).
    cache: bool = False
    cache_max_gb: float = 4.0


@dataclass
class LossConfig:
    _target_: str = "cyclegan.losses.CycleGANLoss"
    gan_mode: GanMode = GanMode.lsgan
    lambda_cyc: float = 10.0
    lambda_id: float = 5.0


@dataclass
class OptimConfig:
    _target_: str = "torch.optim.Adam"
    _partial_: bool = True
    lr: float = 2e-4
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    weight_decay: float = 0.0
    fused: bool | None = None  # one fused kernel per update (CPU and CUDA); null: torch's default
    foreach: bool | None = None


@dataclass
class ScheduleConfig:
    _target_: str = "cyclegan.schedule.LRMultiplier"
    policy: Policy = Policy.linear
    n_epochs: int = 200
    decay_epoch: int = 100


@dataclass
class TrainerConfig:
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    batch_size: int = 1
    num_workers: int = 0
    # Cap on steps per epoch (None: one pass over the larger domain), for quick runs and tests.
    steps_per_epoch: int | None = None
    buffer_size: int = 50
    log_every: int = 10  # steps between logged training scalars
    sample_every: int = 500  # steps between sample grids; 0 disables
    checkpoint_every: int = 1  # checkpoint_units between checkpoints; 0: only at the end
    checkpoint_unit: CheckpointUnit = CheckpointUnit.epoch
    keep_last: int = 3  # numbered checkpoints kept besides last.pt and best.pt
    eval_every: int = 0  # epochs between evaluations; 0: only at the end
    # Opt-in FID/KID at each evaluation: needs the Inception weights (downloaded once, then cached).
    eval_fid: bool = False
    inception_weights: str | None = None  # a local copy of the weights, for offline machines
    n_samples: int = 4  # images per domain in a sample grid
    progress: bool = True  # tqdm bar
    precision: str = "32"  # 32 | bf16-mixed | 16-mixed (autocast; loss scaling for fp16)
    compile: bool = False  # torch.compile the four networks for the training step
    channels_last: bool = False  # NHWC memory format (helps GPU tensor cores; not CPU here)
    cudnn_benchmark: bool = True  # CUDA: time the conv algorithms once per shape, keep the fastest
    # auto: DDP when started by torchrun with WORLD_SIZE > 1, else one process | single | ddp
    # (torchrun's or SLURM's environment). batch_size is per process: global = batch_size x ranks.
    strategy: str = "auto"


@dataclass
class PathsConfig:
    data_dir: str = "data"
    output_dir: str = II("hydra:runtime.output_dir")


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: Any = None  # each logger option has its own keys
    paths: PathsConfig = field(default_factory=PathsConfig)
    seed: int = 0
    run_name: str = "cyclegan"
    optimized_metric: str = "eval/psnr_AB"
    optimized_mode: str = "max"  # max | min: what "best" means for optimized_metric
    resume: str | None = None  # null | auto (this run dir's last.pt, if any) | PATH


def register_configs() -> None:
    """Put the schema in Hydra's ConfigStore (idempotent; called by the entry points)."""
    ConfigStore.instance().store(name="schema", node=Config)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def validate(cfg: DictConfig | Config) -> None:
    """Reject unusable values with one line that names the key and what to use instead."""
    m, d, loss, o, s, t = cfg.model, cfg.dataset, cfg.loss, cfg.optim, cfg.schedule, cfg.trainer
    _check(
        m.n_residual_blocks >= 1, f"model.n_residual_blocks={m.n_residual_blocks}: use 1 or more"
    )
    _check(m.ngf >= 1 and m.ndf >= 1, f"model.ngf={m.ngf}, model.ndf={m.ndf}: widths must be >= 1")
    _check(m.channels >= 1, f"model.channels={m.channels}: must be >= 1")
    _check(m.init_std > 0, f"model.init_std={m.init_std}: must be > 0")
    _check(loss.lambda_cyc >= 0, f"loss.lambda_cyc={loss.lambda_cyc}: loss weights must be >= 0")
    _check(loss.lambda_id >= 0, f"loss.lambda_id={loss.lambda_id}: loss weights must be >= 0")
    _check(o.lr > 0, f"optim.lr={o.lr}: must be > 0")
    _check(
        len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas),
        f"optim.betas={list(o.betas)}: give two values in [0, 1), e.g. [0.5,0.999]",
    )
    _check(s.n_epochs >= 1, f"schedule.n_epochs={s.n_epochs}: must be >= 1")
    _check(
        0 <= s.decay_epoch < s.n_epochs,
        f"schedule.decay_epoch={s.decay_epoch} must be < schedule.n_epochs={s.n_epochs} "
        "(decay starts before the last epoch); lower decay_epoch or raise n_epochs",
    )
    _check(
        d.img_size >= 16 and d.img_size % 4 == 0,
        f"dataset.img_size={d.img_size}: use a multiple of 4 that is >= 16 "
        "(the generator downsamples twice by 2; the discriminator needs room for its patches)",
    )
    _check(
        d.load_scale >= 1.0, f"dataset.load_scale={d.load_scale}: must be >= 1 (resize, then crop)"
    )
    _check(t.batch_size >= 1, f"trainer.batch_size={t.batch_size}: must be >= 1")
    _check(t.num_workers >= 0, f"trainer.num_workers={t.num_workers}: must be >= 0")
    _check(
        t.steps_per_epoch is None or t.steps_per_epoch >= 1,
        f"trainer.steps_per_epoch={t.steps_per_epoch}: use null (a full pass) or >= 1",
    )
    _check(t.buffer_size >= 0, f"trainer.buffer_size={t.buffer_size}: must be >= 0")
    for key in ("log_every", "sample_every", "checkpoint_every", "eval_every"):
        value = getattr(t, key)
        _check(value >= 0, f"trainer.{key}={value}: must be >= 0 (0 disables)")
    _check(t.n_samples >= 1, f"trainer.n_samples={t.n_samples}: must be >= 1")
    _check(
        t.precision in ("32", "bf16-mixed", "16-mixed"),
        f"trainer.precision={t.precision}: use 32, bf16-mixed or 16-mixed",
    )
    _check(
        t.strategy in ("auto", "single", "ddp"),
        f"trainer.strategy={t.strategy}: use auto, single or ddp",
    )
    _check(t.keep_last >= 1, f"trainer.keep_last={t.keep_last}: keep at least 1 checkpoint")
    _check(
        cfg.optimized_mode in ("max", "min"),
        f"optimized_mode={cfg.optimized_mode}: use max or min",
    )
    device = str(t.device)
    _check(
        device in ("auto", "cpu", "cuda", "mps") or device.startswith("cuda:"),
        f"trainer.device={device}: use auto, cpu, cuda, cuda:N or mps",
    )
