"""Every preset and sweep grid in experiments/ composes, instantiates and says what it promises;
launcher configs compose; a missing plugin is named with its pip extra."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from cyclegan.config import plugins
from cyclegan.config.schema import register_configs
from cyclegan.loggers.group import build_loggers, logger_nodes
from cyclegan.methods.cyclegan_networks import CycleGANNetworks
from cyclegan.runtime.strategy import SingleProcess
from cyclegan.sweeps.sweep import describe_grid, main
from cyclegan.training.builder import build_method, train
from cyclegan.training.validation import network_spec, validate

from .conftest import CONF, ROOT

EXPERIMENTS = ROOT / "experiments"
PRESETS = sorted(p.stem for p in EXPERIMENTS.glob("*.yaml"))
GRIDS = sorted(p.stem for p in (EXPERIMENTS / "sweeps").glob("*.yaml"))


@pytest.fixture
def compose_hydra(tmp_path: Path) -> Iterator[Callable[..., DictConfig]]:
    """Like compose_cfg, with the `hydra` node (sweeper, launcher) kept."""
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        yield lambda *overrides: compose(
            "config",
            overrides=[f"paths.data_dir={tmp_path}", f"paths.output_dir={tmp_path}", *overrides],
            return_hydra_config=True,
        )
    GlobalHydra.instance().clear()


def test_the_promised_presets_and_grids_exist() -> None:
    assert {"seed_summer2winter", "cpu_smoke", "paper"} <= set(PRESETS)
    assert {"lambda_grid", "depth_grid", "lr_grid", "optuna_search"} <= set(GRIDS)


METHODS = sorted(p.stem for p in (CONF / "method").glob("*.yaml"))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_builds_with_every_method(
    compose_cfg, tmp_path: Path, name: str, method: str
) -> None:
    """Each preset, as written, with each method: validated, the method built at the preset's
    sizes (its networks, loss and optimizers), its schedule and logger instantiated."""
    cfg = compose_cfg(f"+experiment={name}", f"method={method}")
    assert validate(cfg).name == ("cyclegan" if method == "cyclegan" else "cut")
    torch.manual_seed(0)
    built = build_method(cfg, torch.device("cpu"), SingleProcess())
    assert set(built.translators()) == set(type(built).directions)
    assert built.learning_rate() == cfg.optim.lr
    assert instantiate(cfg.schedule)(0) == 1.0
    makers = {n: instantiate(node, _partial_=True) for n, node in logger_nodes(cfg.logger).items()}
    build_loggers(makers, tmp_path / "log", {}, resume=False).finish()


def test_seed_preset_is_the_full_size_recipe_on_summer2winter(compose_cfg) -> None:
    cfg = compose_cfg("+experiment=seed_summer2winter")
    assert cfg.dataset.name == "summer2winter_yosemite" and cfg.dataset.img_size == 256
    assert cfg.dataset.load_scale == 1.12
    assert (cfg.model.generator, cfg.model.n_residual_blocks, cfg.model.ngf) == ("resnet", 9, 64)
    assert (cfg.schedule.n_epochs, cfg.schedule.decay_epoch, cfg.optim.lr) == (200, 100, 2e-4)
    assert (cfg.loss.lambda_cyc, cfg.loss.lambda_id, cfg.trainer.batch_size) == (10, 5, 1)
    assert cfg.run_name == "seed_summer2winter_yosemite"


def test_paper_preset_uses_the_papers_networks_and_identity_weight(compose_cfg) -> None:
    cfg = compose_cfg("+experiment=paper")
    assert cfg.loss.lambda_id == 0.5 * cfg.loss.lambda_cyc
    assert cfg.dataset.load_scale * cfg.dataset.img_size == 286
    model = CycleGANNetworks(network_spec(cfg), 3, 3)
    assert any(isinstance(m, nn.ConvTranspose2d) for m in model.G_AB.modules())
    assert (cfg.model.n_residual_blocks, cfg.model.ngf, cfg.model.ndf) == (9, 64, 64)
    # The paper preset applies to whichever dataset is chosen; a command-line choice wins.
    assert compose_cfg("+experiment=paper", "dataset=horse2zebra").run_name == "paper_horse2zebra"


@pytest.mark.parametrize("method", METHODS)
def test_cpu_smoke_preset_trains_in_seconds_with_every_method(
    compose_cfg, tmp_path: Path, method: str, caplog
) -> None:
    smaller_data = ["dataset.synthetic.n_train=8", "dataset.synthetic.n_test=4"]  # faster setup
    cfg = compose_cfg(
        "+experiment=cpu_smoke", f"method={method}", *smaller_data, "logger=file",
        "trainer.progress=false",
    )  # fmt: skip
    with caplog.at_level("INFO"):
        result = train(cfg)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["step"] == 16 and summary["epoch"] == 2
    assert result == summary["eval/psnr_AB"]
    if method != "cyclegan":  # 32 px: CUT's layer 12 has 8x8 maps, fewer than 256 patches
        assert (
            "method.num_patches=256: nce layers with fewer positions use all of them (layer "
            "12: 8x8=64)" in caplog.text
        )


@pytest.mark.parametrize("name", GRIDS)
def test_grid_sweeps_real_config_keys(compose_hydra, name: str) -> None:
    if name == "optuna_search":
        pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    cfg = compose_hydra(f"+experiment/sweeps={name}")
    params = cfg.hydra.sweeper.params
    assert params, f"{name} sweeps nothing"
    parser = OverridesParser.create()
    cell = []
    for key, value in params.items():
        assert OmegaConf.select(cfg, key) is not None, f"{name}: no config key {key}"
        override = parser.parse_override(f"{key}={value}")
        if not override.is_sweep_override():  # pinned over a grid it extends
            cell.append(f"{key}={value}")
        elif override.is_discrete_sweep():
            cell.append(f"{key}={next(iter(override.sweep_string_iterator()))}")
    assert any(parser.parse_override(f"{k}={v}").is_sweep_override() for k, v in params.items())
    validate(compose_hydra(f"+experiment/sweeps={name}", *cell))  # one cell of the grid is valid


def test_grid_sizes() -> None:
    sweeps = EXPERIMENTS / "sweeps"
    assert describe_grid(sweeps / "lambda_grid.yaml").startswith("6 runs: loss.lambda_cyc=5,10,20")
    assert describe_grid(sweeps / "depth_grid.yaml") == "3 runs: model.n_residual_blocks=3,6,9"
    assert describe_grid(sweeps / "lr_grid.yaml").startswith("3 runs: optim.lr=")
    assert describe_grid(sweeps / "quality_study.yaml") == (
        "4 runs: loss.lambda_r1=0,1 x optim.lr=2e-4,4e-4"
    )
    assert describe_grid(sweeps / "quality_study_recipe.yaml") == (
        "4 runs: loss.lambda_r1=0 x optim.lr=4e-4,8e-4 x schedule.decay_epoch=0,3"
    )
    assert describe_grid(sweeps / "quality_study_800.yaml") == "2 runs: loss.lambda_r1=0,1"
    assert describe_grid(sweeps / "optuna_search.yaml").startswith("Optuna: 20 trials over")


def test_optuna_grid_maximises_what_train_returns(compose_hydra) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    cfg = compose_hydra("+experiment/sweeps=optuna_search")
    assert cfg.hydra.sweeper._target_.endswith("OptunaSweeper")
    assert str(cfg.hydra.sweeper.direction) in ("maximize", "Direction.maximize")
    assert cfg.optimized_mode == "max"


@pytest.mark.parametrize(
    ("option", "module", "target"),
    [
        ("parallel", "hydra_plugins.hydra_joblib_launcher", "JoblibLauncher"),
        ("slurm", "hydra_plugins.hydra_submitit_launcher", "SlurmLauncher"),
        ("submitit_local", "hydra_plugins.hydra_submitit_launcher", "LocalLauncher"),
    ],
)
def test_launcher_configs_compose(compose_hydra, option: str, module: str, target: str) -> None:
    pytest.importorskip(module)
    launcher = compose_hydra(f"hydra/launcher={option}").hydra.launcher
    assert launcher._target_.endswith(target)
    if option == "slurm":
        assert launcher.gpus_per_node == 1 and launcher.timeout_min == 1440


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["hydra/launcher=parallel"], 'hydra-joblib-launcher plugin: pip install -e ".[sweep]"'),
        (["hydra/launcher=slurm"], 'hydra-submitit-launcher plugin: pip install -e ".[slurm]"'),
        (["-m", "hydra/launcher=submitit_local"], 'pip install -e ".[slurm]"'),
        (
            ["+experiment/sweeps=optuna_search"],
            'hydra-optuna-sweeper plugin: pip install -e ".[sweep]"',
        ),
    ],
)
def test_missing_plugin_names_the_extra(overrides: list[str], expected: str) -> None:
    message = plugins.missing_plugin_message(overrides, EXPERIMENTS, installed=lambda m: False)
    assert message is not None and message.endswith(expected)
    assert plugins.missing_plugin_message(overrides, EXPERIMENTS, installed=lambda m: True) is None


def test_optuna_sqlite_storage_needs_sqlalchemy_1(monkeypatch) -> None:
    overrides = ["+experiment/sweeps=optuna_search", "hydra.sweeper.storage=sqlite:///o.db"]
    monkeypatch.setattr(plugins.importlib.metadata, "version", lambda name: "2.0.30")
    message = plugins.missing_plugin_message(overrides, EXPERIMENTS, installed=lambda m: True)
    assert message is not None and "needs SQLAlchemy < 2" in message
    assert message.endswith('pip install -e ".[sweep]"')
    monkeypatch.setattr(plugins.importlib.metadata, "version", lambda name: "1.4.54")
    assert plugins.missing_plugin_message(overrides, EXPERIMENTS, installed=lambda m: True) is None


def test_nothing_needed_without_plugins() -> None:
    overrides = ["-m", "loss.lambda_cyc=5,10", "+experiment/sweeps=lambda_grid"]
    assert plugins.missing_plugin_message(overrides, EXPERIMENTS, installed=lambda m: False) is None


def test_sweep_stops_before_running_when_a_plugin_is_missing(monkeypatch, capsys) -> None:
    monkeypatch.setattr(plugins, "is_installed", lambda module: False)
    assert main(["lambda_grid", "hydra/launcher=parallel"], root=ROOT) == 2
    assert (
        'needs the hydra-joblib-launcher plugin: pip install -e ".[sweep]"'
        in capsys.readouterr().err
    )
