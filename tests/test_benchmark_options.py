"""benchmarks/train_step.py --set and benchmarks/options.py build the networks and losses asked."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import options as option_table
import train_step

from cyclegan.parts.networks.factory import count_parameters
from cyclegan.parts.networks.patchgan import PixelDiscriminator
from cyclegan.parts.networks.resnet import Generator


def test_set_parses_typed_values_and_refuses_other_groups() -> None:
    sets = [
        "model.generator=unet_256",
        "model.n_layers_D=4",
        "model.spectral_norm=true",
        "loss.lambda_gp=2.5",
        "loss.gan_mode=hinge",
    ]
    assert train_step.parse_sets(sets) == {
        "model": {"generator": "unet_256", "n_layers_D": 4, "spectral_norm": True},
        "loss": {"lambda_gp": 2.5, "gan_mode": "hinge"},
    }
    with pytest.raises(SystemExit, match=r"use model\.KEY=VALUE or loss\.KEY=VALUE"):
        train_step.parse_sets(["trainer.batch_size=2"])
    with pytest.raises(SystemExit, match="baseline mode is the seed's lsgan step"):
        train_step.main(["--modes", "baseline,optimized", "--set", "loss.gan_mode=hinge"])


def test_options_reach_the_trainer() -> None:
    options = train_step.parse_sets(["model.discriminator=pixel", "loss.gan_mode=wgangp"])
    t = train_step.make_trainer(32, 1, 1, torch.device("cpu"), "optimized", options)
    assert isinstance(t.model.D_A, PixelDiscriminator)
    assert t.criterion.adversarial.uses_penalty


def test_option_table_rows_measure_each_option(capsys) -> None:
    rows = option_table.measure(
        ["default", "pixel", "hinge"], 32, 1, 1, torch.device("cpu"), 0, 1, 4
    )
    by = {r["name"]: r for r in rows}
    # Parameters at the full width 64 (the step ran at width 4): the 1x1 D vs the seed's D.
    assert by["pixel"]["D"] == 8705 and by["default"]["D"] == 2764737
    assert by["pixel"]["G"] == count_parameters(Generator(3, 64, 1))
    assert by["default"]["rel"] == 1.0 and all(r["s"] > 0 for r in rows)
    option_table.print_markdown(rows, 32, 1, 1, "cpu")
    out = capsys.readouterr().out
    assert f"| `model.discriminator=pixel` | {by['pixel']['G'] / 1e6:.2f}M | 0.009M |" in out
    with pytest.raises(SystemExit, match="unknown option row"):
        option_table.main(["--only", "unet_64"])
