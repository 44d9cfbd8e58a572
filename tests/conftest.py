"""Shared fixtures: composing the project's Hydra config the way train.py does."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from cyclegan.config.schema import group_defaults, register_configs
from cyclegan.methods.base import Execution
from cyclegan.methods.cyclegan import CycleGAN
from cyclegan.methods.cyclegan_networks import CycleGANNetworks
from cyclegan.parts.networks.spec import NetworkSpec
from cyclegan.parts.schedule import LRMultiplier
from cyclegan.runtime.strategy import SingleProcess

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
    """No W&B unless a test asks for it (`logger.wandb.mode=offline`): the default logger's mode is
    ${oc.env:WANDB_MODE,offline}, and subprocesses inherit the variable."""
    monkeypatch.setenv("WANDB_MODE", "disabled")


@pytest.fixture(autouse=True)
def _no_inception_download(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test downloads the Inception weights: FID/KID are on by default for datasets without
    ground truth, so a test training on one would otherwise fetch 100 MB (offline: it warns and
    goes on without FID/KID, as a user's run would). Tests inject a small feature network."""
    try:
        from torch_fidelity import feature_extractor_inceptionv3 as fidelity
    except ImportError:
        return

    def refuse(url: str, *args: object, **kwargs: object) -> None:
        raise OSError(f"tests do not download ({url})")

    monkeypatch.setattr(fidelity, "load_state_dict_from_url", refuse)


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


def network_spec(option: str = "resnet", **changes: Any) -> NetworkSpec:
    """A model option's `NetworkSpec` (conf/model/<option>.yaml) with `changes`."""
    return group_defaults("model", option, **changes)


def build_networks(
    option: str = "resnet", channels: tuple[int, int] = (3, 3), **changes: Any
) -> CycleGANNetworks:
    """CycleGAN's four networks for a model option with `changes` (e.g. ngf=8)."""
    return CycleGANNetworks(network_spec(option, **changes), *channels)


def build_loss(option: str = "cyclegan", **changes: Any) -> Any:
    """The loss group's module for `option` (conf/loss/<option>.yaml) with `changes`."""
    from hydra.utils import get_class

    values = group_defaults("loss", option, **changes)
    return get_class(values.pop("_target_"))(**values)


def cyclegan_method(
    networks: NetworkSpec,
    loss: Any,
    optimizer: Any,
    lr_rule: LRMultiplier,
    device: torch.device | str = "cpu",
    buffer_size: int = 50,
    device_buffers: bool | None = None,
    **execution: Any,
) -> CycleGAN:
    """The CycleGAN method built directly (RGB domains, seed 0), with `Execution.plain` plus
    `execution` changes (precision, cuda_graphs, strategy, ...)."""
    return CycleGAN(
        networks=networks,
        loss=loss,
        optimizer=optimizer,
        lr_rule=lr_rule,
        channels=(3, 3),
        execution=Execution.plain(device, **execution),
        seed=0,
        buffer_size=buffer_size,
        device_buffers=device_buffers,
    )


def make_method(
    lambda_id: float = 5.0,
    dtype: torch.dtype = torch.float32,
    strategy: SingleProcess | None = None,
    buffer_size: int | None = None,
    **trainer_options: Any,
) -> CycleGAN:
    """A tiny CycleGAN method (1 block, width 8) with the trainer group's defaults plus options."""
    torch.manual_seed(0)
    options = group_defaults("trainer", progress=False, device="cpu", **trainer_options)
    if buffer_size is None:
        buffer_size = group_defaults("method", "cyclegan")["buffer_size"]
    execution = Execution(
        device=torch.device("cpu"),
        precision=options.precision,
        channels_last=options.channels_last,
        compile=options.compile,
        compile_mode=options.compile_mode,
        cuda_graphs=options.cuda_graphs,
        activation_checkpointing=options.activation_checkpointing,
        strategy=strategy or SingleProcess(),
    )
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # built in `dtype`: DDP wraps (and broadcasts) what it sees
    try:
        method = CycleGAN(
            networks=network_spec(n_residual_blocks=1, ngf=8, ndf=8),
            loss=build_loss(lambda_id=lambda_id),
            optimizer=partial(torch.optim.Adam, lr=2e-4, betas=(0.5, 0.999)),
            lr_rule=LRMultiplier("linear", 4, 2),
            channels=(3, 3),
            execution=execution,
            seed=0,
            buffer_size=buffer_size,
        )
    finally:
        torch.set_default_dtype(default)
    method.model.to(dtype)  # buffers made in float32 on purpose (CUT's blur filters)
    return method


def as_batch(real_A: torch.Tensor, real_B: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"A": real_A, "B": real_B}
