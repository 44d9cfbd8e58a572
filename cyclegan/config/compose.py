"""The config `train.py` composes for a command line, for code that runs without one.

Benchmarks, notebooks, sweep preflights and tests compose through Hydra's compose API with the same
config groups, defaults lists and schema as `train.py`, so what they build is what users train.
"""

from __future__ import annotations

from collections.abc import Sequence

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from cyclegan.config.schema import CONF_DIR, register_configs


def compose_config(overrides: Sequence[str] = (), return_hydra_config: bool = False) -> DictConfig:
    """The composed config for `overrides` (as on train.py's command line)."""
    register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose(
                "config", overrides=list(overrides), return_hydra_config=return_hydra_config
            )
    finally:
        GlobalHydra.instance().clear()
