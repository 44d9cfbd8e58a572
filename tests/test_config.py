"""Every config option composes and instantiates; bad keys, types and values fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf.errors import ConfigKeyError, ValidationError

from cyclegan.config.schema import ConfigError
from cyclegan.data.synthetic import SyntheticLandscapes
from cyclegan.loggers.group import build_loggers, logger_nodes
from cyclegan.methods.cyclegan_networks import CycleGANNetworks
from cyclegan.parts.losses.cut import CUTLoss
from cyclegan.parts.losses.cyclegan import CycleGANLoss
from cyclegan.parts.schedule import LRMultiplier
from cyclegan.runtime.strategy import SingleProcess
from cyclegan.training.validation import network_spec, validate

from .conftest import CONF

# The loggers each logger option configures (`logger.<name>`).
LOGGERS = {
    "wandb": ["wandb"],
    "file": ["file"],
    "none": [],
    "tensorboard": ["tensorboard"],
    "many": ["wandb", "tensorboard"],
}
GROUPS = ["method", "model", "dataset", "loss", "optim", "schedule", "trainer", "logger", "recipe"]
# Files starting with "_" are what the options of a group extend, not options.
OPTIONS = [
    (g, p.stem) for g in GROUPS for p in sorted((CONF / g).glob("*.yaml")) if p.stem[0] != "_"
]


def test_every_group_has_options() -> None:
    assert {g for g, _ in OPTIONS} == set(GROUPS)
    datasets = {o for g, o in OPTIONS if g == "dataset"}
    assert {
        "synthetic",
        "summer2winter",
        "horse2zebra",
        "monet2photo",
        "apple2orange",
        "vangogh2photo",
    } <= datasets


@pytest.mark.parametrize(("group", "option"), OPTIONS)
def test_every_option_composes_and_instantiates(
    group: str, option: str, compose_cfg, tmp_path: Path
) -> None:
    extra = [f"dataset.root={tmp_path / 'mine'}"] if option == "folder" else []
    if group == "loss":  # each loss option is a method's (`loss: ${method}`)
        extra.append(f"method={option}")
    cfg = compose_cfg(f"{group}={option}", *extra)
    validate(cfg)
    if group == "method":
        from cyclegan.methods.base import TrainingMethod
        from cyclegan.training.builder import build_method

        method = build_method(cfg, torch.device("cpu"), SingleProcess())
        assert isinstance(method, TrainingMethod) and method.translators()
    elif group == "model":
        model = CycleGANNetworks(network_spec(cfg), 3, 3)
        nets = (model.G_AB.upsampling, type(model.D_A).__name__)
        expected = {
            "resnet": ("nearest", "PyTorchGANDiscriminator"),
            "paper": ("transposed", "NLayerDiscriminator"),
            "cut": ("antialias", "CUTNLayerDiscriminator"),
        }
        assert nets == expected[option]
    elif group == "loss":
        expected_loss = CycleGANLoss if option == "cyclegan" else CUTLoss
        assert isinstance(instantiate(cfg.loss), expected_loss)
    elif group == "optim":
        opt = instantiate(cfg.optim, _convert_="all")([torch.nn.Parameter(torch.zeros(1))])
        assert isinstance(opt, torch.optim.Optimizer)
        assert opt.param_groups[0]["lr"] == cfg.optim.lr
    elif group == "schedule":
        rule = instantiate(cfg.schedule)
        assert isinstance(rule, LRMultiplier)
        assert rule(cfg.schedule.n_epochs) == pytest.approx(0.0) or option == "constant"
    elif group == "logger":
        nodes = logger_nodes(cfg.logger)
        assert list(nodes) == LOGGERS[option]
        makers = {name: instantiate(node, _partial_=True) for name, node in nodes.items()}
        logger = build_loggers(makers, tmp_path / "run", {}, resume=False)
        logger.log_metrics({"x": 1.0}, step=1, epoch=0)
        logger.finish()
        # W&B (disabled in tests) and TensorBoard keep metrics.jsonl too, written once when they
        # are combined; only `none` writes nothing.
        metrics = tmp_path / "run" / "metrics.jsonl"
        rows = metrics.read_text().splitlines() if metrics.exists() else []
        assert len(rows) == (0 if option == "none" else 1)
        assert (tmp_path / "run" / "tensorboard").is_dir() == ("tensorboard" in nodes)
    elif group == "dataset":
        if option == "synthetic":
            assert isinstance(instantiate(cfg.dataset.synthetic), SyntheticLandscapes)
            assert cfg.dataset.paired_test
        elif option == "folder":
            assert cfg.dataset.root == str(tmp_path / "mine") and cfg.dataset.download_name is None
        else:
            assert cfg.dataset.synthetic is None
            assert cfg.dataset.download_name in Path(cfg.dataset.root).name
            assert cfg.dataset.img_size == 256
    elif group == "trainer":
        assert cfg.trainer.device == "auto"


def test_builtin_dataset_carries_a_cpu_recipe_and_real_sets_the_seed_recipe(compose_cfg) -> None:
    default = compose_cfg()
    assert default.dataset.name == "synthetic"
    assert (default.dataset.img_size, default.model.ngf) == (64, 32)
    assert default.schedule.n_epochs < 20
    real = compose_cfg("dataset=summer2winter")
    assert real.dataset.name == "summer2winter_yosemite"
    assert (real.dataset.img_size, real.model.n_residual_blocks, real.model.ngf) == (256, 9, 64)
    assert (real.schedule.n_epochs, real.schedule.decay_epoch) == (200, 100)
    # Command-line overrides beat the dataset's recipe.
    assert compose_cfg("model.ngf=48").model.ngf == 48


def test_user_facing_names(compose_cfg) -> None:
    cfg = compose_cfg(
        "model.n_residual_blocks=3",
        "model.ngf=16",
        "model.ndf=16",
        "loss.lambda_cyc=5",
        "loss.lambda_id=0",
        "loss.gan_mode=vanilla",
        "optim.lr=1e-3",
        "optim.betas=[0.9,0.99]",
        "schedule.n_epochs=20",
        "schedule.decay_epoch=10",
        "trainer.batch_size=4",
        "dataset.img_size=128",
        "seed=7",
    )
    validate(cfg)
    assert instantiate(cfg.loss).lambda_cyc == 5.0
    assert cfg.loss.gan_mode == "vanilla"
    assert list(cfg.optim.betas) == [0.9, 0.99]


def test_typo_fails_naming_the_key(compose_cfg) -> None:
    with pytest.raises(ConfigCompositionException) as err:
        compose_cfg("model.n_residual_block=6")
    assert "n_residual_block" in str(err.value) + str(err.value.__cause__)


def test_wrong_type_fails_naming_the_key(compose_cfg) -> None:
    with pytest.raises(ConfigCompositionException) as err:
        compose_cfg("model.ngf=wide")
    message = str(err.value) + str(err.value.__cause__)
    assert "ngf" in message
    assert isinstance(err.value.__cause__, ValidationError | ConfigKeyError)


def test_unknown_option_fails(compose_cfg) -> None:
    with pytest.raises(ConfigCompositionException, match="model"):
        compose_cfg("model=unet")
    # The loss group's keys are its class's arguments: its values are checked before any work.
    with pytest.raises(ConfigError, match=r"^unknown loss.gan_mode 'wgan'; choose one of lsgan"):
        validate(compose_cfg("loss.gan_mode=wgan"))


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("model.n_residual_blocks=-1", "model.n_residual_blocks"),
        ("model.ngf=0", "model.ngf"),
        ("loss.lambda_cyc=-1", "loss.lambda_cyc"),
        ("loss.lambda_id=-0.5", "loss.lambda_id"),
        ("optim.lr=0", "optim.lr"),
        ("optim.betas=[0.5,1.5]", "optim.betas"),
        ("schedule.decay_epoch=8", "schedule.decay_epoch"),
        ("dataset.img_size=66", "dataset.img_size"),
        ("dataset.img_size=8", "dataset.img_size"),
        ("dataset.load_scale=0.9", "dataset.load_scale"),
        ("trainer.batch_size=0", "trainer.batch_size"),
        ("trainer.steps_per_epoch=0", "trainer.steps_per_epoch"),
        ("trainer.device=tpu", "trainer.device"),
        ("trainer.sample_every=-1", "trainer.sample_every"),
    ],
)
def test_invalid_values_fail_before_training_with_one_line(
    override: str, key: str, compose_cfg
) -> None:
    cfg = compose_cfg(override)
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    message = str(err.value)
    assert message.startswith(key)
    assert "\n" not in message


@pytest.mark.parametrize(
    ("overrides", "start"),
    [
        (
            ["model.generator=unet_256"],
            "model.generator=unet_256 needs dataset.img_size divisible by 256",
        ),
        (
            ["model.discriminator=n_layers", "model.n_layers_D=5"],
            "model.n_layers_D=5 is too deep for 64x64",
        ),
        (
            ["loss.gan_mode=wgangp", "loss.lambda_gp=null"],
            "loss.gan_mode=wgangp needs a gradient-penalty weight",
        ),
        (
            ["loss.gan_mode=wgangp", "loss.lambda_gp=0"],
            "loss.gan_mode=wgangp needs a gradient-penalty weight",
        ),
        (
            ["model.use_dropout=true"],
            "model.use_dropout=true: model.generator=resnet has no dropout",
        ),
        (["model.init_gain=0"], "model.init_gain=0.0: must be > 0"),
        (["model.n_layers_D=0"], "model.n_layers_D=0: must be >= 1"),
    ],
)
def test_network_and_loss_options_fail_before_any_work(
    overrides: list[str], start: str, compose_cfg, tmp_path: Path
) -> None:
    from cyclegan.training.builder import train

    with pytest.raises(ConfigError) as err:
        train(compose_cfg(*overrides))
    message = str(err.value)
    assert message.startswith(start) and "\n" not in message
    assert not (tmp_path / "data").exists() and not (tmp_path / "run").exists()


def test_network_option_typos_fail_at_composition(compose_cfg) -> None:
    for override in ("model.generator=unet_64", "model.norm=group", "model.init_type=uniform"):
        with pytest.raises(ConfigCompositionException, match=override.split("=")[0].split(".")[1]):
            compose_cfg(override)


def test_saved_configs_with_the_old_keys_compare_in_todays_keys() -> None:
    from cyclegan.checkpoints.record import CYCLEGAN_TARGET, upgrade_saved_config

    old = {"model": {"variant": "paper", "init_std": 0.02, "ngf": 8, "channels": 3}, "seed": 0}
    old["trainer"] = {"buffer_size": 50, "batch_size": 1}
    assert upgrade_saved_config(old) == {
        "model": {"generator": "paper", "discriminator": "basic", "init_gain": 0.02, "ngf": 8},
        "seed": 0,
        "trainer": {"batch_size": 1},
        "method": {"_target_": CYCLEGAN_TARGET, "buffer_size": 50},  # the only method then
    }
    assert old["model"]["variant"] == "paper"  # the caller's dict is left alone
    new = upgrade_saved_config(old)
    assert upgrade_saved_config(new) == new and upgrade_saved_config(None) == {}


def test_saved_cut_configs_move_the_loss_weights_to_the_loss_group() -> None:
    from cyclegan.checkpoints.record import upgrade_saved_config

    old = {
        "model": {"_target_": "cyclegan.models.CycleGAN", "generator": "cut", "channels_A": 3},
        "method": {"_target_": "cyclegan.methods.cut.CUT", "lambda_NCE": 10.0, "nce_idt": False,
                   "lambda_GAN": 1.0, "precision": "32", "init_gain": None, "num_patches": 256},
        "loss": {"_target_": "cyclegan.losses.CycleGANLoss", "gan_mode": "lsgan",
                 "lambda_cyc": 10.0, "lambda_id": 5.0, "lambda_gp": 10.0},
        "trainer": {"buffer_size": 50},
    }  # fmt: skip
    upgraded = upgrade_saved_config(old)
    assert upgraded["method"] == {"_target_": "cyclegan.methods.cut.CUT", "num_patches": 256}
    assert upgraded["loss"] == {
        "_target_": "cyclegan.parts.losses.cut.CUTLoss", "gan_mode": "lsgan", "lambda_gp": 10.0,
        "lambda_GAN": 1.0, "lambda_NCE": 10.0, "nce_idt": False,
    }  # fmt: skip
    assert upgraded["model"] == {"generator": "cut"} and upgraded["trainer"] == {}
