"""Shared fixtures: composing the project's Hydra config the way train.py does."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from cyclegan.config import register_configs

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

# A configuration small enough to train a few steps in about a second on a CPU.
TINY = [
    "dataset.img_size=32",
    "dataset.synthetic.n_train=8",
    "dataset.synthetic.n_test=4",
    "model.ngf=8",
    "model.ndf=8",
    "model.n_residual_blocks=1",
    "schedule.n_epochs=2",
    "schedule.decay_epoch=0",
    "trainer.steps_per_epoch=3",
    "trainer.log_every=1",
    "trainer.sample_every=2",
    "trainer.n_samples=2",
    "trainer.progress=false",
    "trainer.device=cpu",
]


@pytest.fixture(autouse=True)
def _wandb_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    """No W&B unless a test asks for it (`logger.mode=offline`): the default logger's mode is
    ${oc.env:WANDB_MODE,offline}, and subprocesses inherit the variable."""
    monkeypatch.setenv("WANDB_MODE", "disabled")


@pytest.fixture
def compose_cfg(tmp_path: Path) -> Iterator[Callable[..., DictConfig]]:
    """compose_cfg(*overrides) -> the composed config, with data and outputs under tmp_path."""
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):

        def _compose(*overrides: str) -> DictConfig:
            return compose(
                config_name="config",
                overrides=[
                    f"paths.data_dir={tmp_path / 'data'}",
                    f"paths.output_dir={tmp_path / 'run'}",
                    *overrides,
                ],
            )

        yield _compose
    GlobalHydra.instance().clear()
