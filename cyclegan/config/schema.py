"""Typed schemas for the Hydra config, and the value checks types cannot express.

The dataclasses are registered in Hydra's ConfigStore as `schema`, the first entry of
`conf/config.yaml`'s defaults list, so every YAML option merges into a typed node: a misspelt key
(`model.n_residual_block=6`) or a wrong type (`model.ngf=wide`) fails at composition, naming the key.
They hold types only: every default lives once, in `conf/` (`group_defaults` reads a group's file
for code that builds parts without Hydra). `cyclegan.training.validation.validate` then rejects
values that are well-typed but unusable, before any data or model is built.
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
from cyclegan.parts.networks.spec import NetworkSpec
from cyclegan.parts.schedule import Policy

__all__ = ["CONF_DIR", "Config", "ConfigError", "TrainerConfig", "group_defaults"]

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


class CheckpointUnit(StrEnum):
    epoch = "epoch"
    step = "step"


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
    decay_epoch: int | None = MISSING  # read by linear and cosine


@dataclass
class TrainerConfig:
    """How the loop runs (conf/trainer/default.yaml has every value and what it means)."""

    device: str = MISSING
    batch_size: int = MISSING
    num_workers: int = MISSING
    steps_per_epoch: int | None = MISSING
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
    ema_decay: float = MISSING  # 0: off
    ema_warmup: bool = MISSING
    eval_raw: bool = MISSING  # also score the trained generators (eval/raw/...)
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
    # The method's own groups: each option has exactly the keys its method reads (checked against
    # the method's and the loss's constructors by `validate`).
    method: Any = MISSING
    loss: Any = MISSING
    model: NetworkSpec = MISSING  # the networks, typed by their spec
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
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


SCHEMAS: dict[str, Any] = {"trainer": TrainerConfig, "model": NetworkSpec}


def group_defaults(group: str, option: str = "default", **overrides: Any) -> Any:
    """A group option's values from `conf/<group>/<option>.yaml` (and the options of its group
    it extends), with `overrides`: for code that builds parts without Hydra (tests, benchmarks,
    notebooks). Typed groups (trainer, model) give their schema's object (`NetworkSpec`, ...);
    the others a plain dict, `_target_` included."""
    node = OmegaConf.merge(_option_values(group, option), overrides)
    if group in SCHEMAS:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(SCHEMAS[group]), node))
    return OmegaConf.to_container(node, resolve=True)


def _option_values(group: str, option: str) -> Any:
    """An option's own keys over those of the same-group options its defaults list names."""
    node = OmegaConf.load(CONF_DIR / group / f"{option}.yaml")
    parents = [d for d in node.pop("defaults", []) if isinstance(d, str) and d != "_self_"]
    return OmegaConf.merge(*(_option_values(group, p) for p in parents), node)
