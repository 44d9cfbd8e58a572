"""Typed schemas for the Hydra config, and the value checks types cannot express.

The dataclasses are registered in Hydra's ConfigStore as `schema`, the first entry of
`conf/config.yaml`'s defaults list, so every YAML option merges into a typed node: a misspelt key
(`model.n_residual_block=6`) or a wrong type (`model.ngf=wide`) fails at composition, naming the key.
They hold types only: every default lives once, in `conf/` (`group_defaults` reads a group's file
for code that builds parts without Hydra). `validate()` then rejects values that are well-typed
but unusable, before any data or model is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from cyclegan.data.transforms import Preprocess
from cyclegan.errors import ConfigError
from cyclegan.parts.losses.adversarial import GanMode
from cyclegan.parts.networks.choices import GeneratorKind
from cyclegan.parts.networks.init import InitType
from cyclegan.parts.networks.norms import Norm
from cyclegan.parts.networks.patchgan import DiscriminatorKind
from cyclegan.parts.schedule import Policy

__all__ = ["CONF_DIR", "Config", "ConfigError", "TrainerConfig", "group_defaults", "validate"]

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


class CheckpointUnit(StrEnum):
    epoch = "epoch"
    step = "step"


@dataclass
class ModelConfig:
    _target_: str = MISSING
    generator: GeneratorKind = MISSING
    discriminator: DiscriminatorKind = MISSING
    n_residual_blocks: int = MISSING
    n_layers_D: int = MISSING  # the n_layers discriminator's depth
    ngf: int = MISSING  # generator width (channels after the first conv)
    ndf: int = MISSING  # discriminator width
    channels: int = MISSING
    norm: Norm = MISSING
    use_dropout: bool = MISSING
    spectral_norm: bool = MISSING
    init_type: InitType = MISSING
    init_gain: float = MISSING
    channels_A: int | None = MISSING  # per-domain channel counts (dataset.channels_A/B)
    channels_B: int | None = MISSING


@dataclass
class DatasetConfig:
    _target_: str = MISSING
    name: str = MISSING
    root: str = MISSING
    img_size: int = MISSING
    load_scale: float = MISSING
    preprocess: Preprocess = MISSING
    load_size: int | None = MISSING
    crop_size: Any = MISSING  # an int or "HxW"
    flip: bool = MISSING
    channels_A: int = MISSING
    channels_B: int = MISSING
    download_name: str | None = MISSING
    paired_test: bool = MISSING
    synthetic: Any = MISSING  # the built-in set's generator (a `_target_` node) or null
    cache: bool = MISSING
    cache_max_gb: float = MISSING


@dataclass
class LossConfig:
    _target_: str = MISSING
    gan_mode: GanMode = MISSING
    lambda_cyc: float = MISSING
    lambda_id: float = MISSING
    lambda_gp: float | None = MISSING


@dataclass
class OptimConfig:
    _target_: str = MISSING
    _partial_: bool = MISSING
    lr: float = MISSING
    betas: list[float] = MISSING
    weight_decay: float = MISSING
    fused: bool | None = MISSING
    foreach: bool | None = MISSING


@dataclass
class ScheduleConfig:
    _target_: str = MISSING
    policy: Policy = MISSING
    n_epochs: int = MISSING
    decay_epoch: int = MISSING


@dataclass
class TrainerConfig:
    """How the loop runs (conf/trainer/default.yaml has every value and what it means)."""

    device: str = MISSING
    batch_size: int = MISSING
    num_workers: int = MISSING
    steps_per_epoch: int | None = MISSING
    buffer_size: int = MISSING
    log_every: int = MISSING
    sample_every: int = MISSING
    checkpoint_every: int = MISSING
    checkpoint_unit: CheckpointUnit = MISSING
    keep_last: int = MISSING
    eval_every: int = MISSING
    eval_fid: bool | None = MISSING  # None: on where the test set has no ground truth
    inception_weights: str | None = MISSING
    feature_extractor: Any = MISSING  # null (the FID Inception) or a _target_ node: an nn.Module
    n_samples: int = MISSING
    progress: bool = MISSING
    precision: str = MISSING
    compile: bool = MISSING
    compile_mode: str = MISSING
    cuda_graphs: bool = MISSING
    device_cache: bool = MISSING
    channels_last: bool = MISSING
    activation_checkpointing: bool = MISSING
    cudnn_benchmark: bool = MISSING
    strategy: str = MISSING


@dataclass
class PathsConfig:
    data_dir: str = MISSING
    output_dir: str = MISSING


@dataclass
class Config:
    method: Any = MISSING  # each method option has its own keys
    model: ModelConfig = field(default_factory=ModelConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: Any = (
        MISSING  # {name: a logger node}: logger=wandb, logger=[wandb,tensorboard], logger=none ({})
    )
    paths: PathsConfig = field(default_factory=PathsConfig)
    seed: int = MISSING
    run_name: str = MISSING
    optimized_metric: str = MISSING
    optimized_mode: str = MISSING  # max | min: what "best" means for optimized_metric
    resume: str | None = MISSING  # null | auto (this run dir's last.pt, if any) | PATH


def register_configs() -> None:
    """Put the schema in Hydra's ConfigStore and the configs' resolvers (`${stamp:}`,
    `${default_metric:}`, ...) in OmegaConf (idempotent; called by the entry points)."""
    from cyclegan.config.resolvers import register_resolvers

    ConfigStore.instance().store(name="schema", node=Config)
    register_resolvers()


SCHEMAS = {"trainer": TrainerConfig, "model": ModelConfig, "loss": LossConfig}


def group_defaults(group: str, option: str = "default", **overrides: Any) -> Any:
    """A group option's values from `conf/<group>/<option>.yaml`, typed by its schema, with
    `overrides`: for code that builds parts without Hydra (tests, benchmarks, notebooks)."""
    node = OmegaConf.merge(
        OmegaConf.structured(SCHEMAS[group]),
        OmegaConf.load(CONF_DIR / group / f"{option}.yaml"),
        overrides,
    )
    return OmegaConf.to_object(node)


# Model keys renamed since a checkpoint may have been written: model.variant named both networks.
_VARIANT_NETWORKS = {"resnet": ("resnet", "pytorch_gan"), "paper": ("paper", "basic")}


def upgrade_saved_config(saved: Any) -> dict[str, Any]:
    """A checkpoint's saved config in today's keys, so resuming compares like with like:
    `model.variant` becomes `model.generator` + `model.discriminator`, `model.init_std` becomes
    `model.init_gain` (same values, same networks)."""
    config = dict(saved or {})
    model = dict(config.get("model") or {})
    if "variant" in model:
        generator, discriminator = _VARIANT_NETWORKS[str(model.pop("variant"))]
        model.setdefault("generator", generator)
        model.setdefault("discriminator", discriminator)
    if "init_std" in model:
        model.setdefault("init_gain", model.pop("init_std"))
    if model:
        config["model"] = model
    return config


# The value checks live in their own module; `from cyclegan.config.schema import validate` keeps working.
from cyclegan.config.checks import validate  # noqa: E402
