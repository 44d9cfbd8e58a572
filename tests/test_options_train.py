"""Every network and loss option trains a few steps, checkpoints and resumes bit-exactly.

One row per option of the README's table (issue 14): each is composed by Hydra from the command
line keys users type, validated, built by the ordinary builder and trained by the CycleGAN method.
The run saves a checkpoint after each of its 4 steps (2 epochs); a second run resumes from step 1
(mid-epoch, so it also crosses an epoch boundary) and must end
with the same weights and optimizer state, and log the same losses, as the uninterrupted one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cyclegan.checkpoints.file import load_checkpoint
from cyclegan.inference.importers import load_generator
from cyclegan.parts.networks.patchgan import NLayerDiscriminator, PixelDiscriminator
from cyclegan.parts.networks.unet import UnetGenerator
from cyclegan.runtime.strategy import SingleProcess
from cyclegan.training.builder import build_method, train

from .conftest import TINY, build_loss, network_spec
from .test_resume import assert_same_weights, train_rows

RUN = [
    *TINY,
    "schedule.n_epochs=2",
    "trainer.steps_per_epoch=2",
    "trainer.checkpoint_unit=step",
    "trainer.checkpoint_every=1",
    "trainer.keep_last=10",
    "trainer.sample_every=0",
    "trainer.eval_every=0",
]


def _conv_weights(m: torch.nn.Module) -> list[torch.Tensor]:
    return [c.weight.detach() for c in m.modules() if isinstance(c, torch.nn.Conv2d)]


def _init_is(m: torch.nn.Module, init_type: str, gain: float) -> bool:
    """Every conv of G_AB drawn as `init_type` says: the std of each weight tensor within 15% of
    the init's formula (orthogonal: the rows of the flattened weight are gain-orthonormal)."""
    for w in _conv_weights(m.G_AB):
        if w.numel() < 500:  # too few draws to measure (e.g. the 1x1 convs)
            continue
        fan_out, fan_in = w.shape[0] * w[0, 0].numel(), w[0].numel()
        if init_type == "orthogonal":
            flat = w.flatten(1)
            if flat.shape[0] > flat.shape[1]:
                flat = flat.T
            eye = torch.eye(flat.shape[0]) * gain**2
            if not torch.allclose(flat @ flat.T, eye, atol=1e-4):
                return False
            continue
        want = {
            "normal": gain,
            "xavier": gain * (2 / (fan_in + fan_out)) ** 0.5,
            "kaiming": (2 / fan_in) ** 0.5,
        }[init_type]
        if abs(w.std().item() / want - 1) > 0.15:
            return False
    return True


# (id, overrides, check of the built method: its networks m and its loss c)
OPTIONS = [
    ("paper", ["model=paper"], lambda m, c: isinstance(m.D_A, NLayerDiscriminator)),
    (
        "paper-batch",
        ["model=paper", "model.norm=batch"],
        lambda m, c: m.G_AB.norm == "batch" and not m.generators_per_image,
    ),
    (
        "resnet-none",
        ["model.norm=none"],
        lambda m, c: m.G_AB.norm == "none" and m.generators_per_image,
    ),
    (
        "unet_128-batch-dropout-n_layers2",
        [
            "model.generator=unet_128",
            "model.norm=batch",
            "model.use_dropout=true",
            "model.discriminator=n_layers",
            "model.n_layers_D=2",
            "model.ngf=2",
            "dataset.img_size=128",
        ],
        lambda m, c: (
            isinstance(m.G_AB, UnetGenerator) and m.D_A.n_layers == 2 and not m.generators_per_image
        ),
    ),
    (
        "unet_256-none-pixel",
        [
            "model.generator=unet_256",
            "model.norm=none",
            "model.discriminator=pixel",
            "model.ngf=1",
            "dataset.img_size=256",
        ],
        lambda m, c: m.G_AB.num_downs == 8 and isinstance(m.D_A, PixelDiscriminator),
    ),
    (
        "spectral_norm-hinge",
        ["model.spectral_norm=true", "loss.gan_mode=hinge"],
        lambda m, c: hasattr(m.D_A.model[0], "parametrizations") and c.gan_mode == "hinge",
    ),
    (
        "wgangp-basic",
        ["loss.gan_mode=wgangp", "loss.lambda_gp=10", "model.discriminator=basic"],
        lambda m, c: (
            isinstance(m.D_A, NLayerDiscriminator)
            and (c.gan_mode, c.adversarial.lambda_gp) == ("wgangp", 10.0)
        ),
    ),
    (
        "vanilla-xavier",
        ["loss.gan_mode=vanilla", "model.init_type=xavier"],
        lambda m, c: c.gan_mode == "vanilla" and _init_is(m, "xavier", 0.02),
    ),
    ("kaiming", ["model.init_type=kaiming"], lambda m, c: _init_is(m, "kaiming", 0.02)),
    (
        "orthogonal-gain",
        ["model.init_type=orthogonal", "model.init_gain=0.5"],
        lambda m, c: _init_is(m, "orthogonal", 0.5),
    ),
    ("normal", [], lambda m, c: _init_is(m, "normal", 0.02) and not _init_is(m, "xavier", 0.02)),
]


SLOW = {"unet_256-none-pixel"}  # ~7 s: 256 px images


@pytest.mark.parametrize(
    ("overrides", "check"),
    [
        pytest.param(*o[1:], id=o[0], marks=[pytest.mark.slow] if o[0] in SLOW else [])
        for o in OPTIONS
    ],
)
def test_option_trains_checkpoints_and_resumes_exactly(
    overrides: list[str], check, compose_cfg, tmp_path: Path
) -> None:
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    cfg = compose_cfg(*RUN, *overrides, f"paths.output_dir={full}")
    built = build_method(cfg, torch.device("cpu"), SingleProcess())
    model = built.model
    assert check(model, built.criterion)
    train(cfg)
    ckpt = full / "checkpoints" / "step_0000001.pt"  # mid-epoch 0
    train(compose_cfg(*RUN, *overrides, f"paths.output_dir={resumed}", f"resume={ckpt}"))

    a = load_checkpoint(full / "checkpoints" / "last.pt")
    b = load_checkpoint(resumed / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == 4
    assert_same_weights(a["model"], b["model"])
    before = load_checkpoint(ckpt)["model"]
    assert any(not torch.equal(before[k], a["model"][k]) for k in before)  # it did train
    for name in ("G", "D_A", "D_B"):
        sa, sb = a["optimizers"][name]["state"], b["optimizers"][name]["state"]
        assert all(torch.equal(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"]) for i in sa)
    rows_a, rows_b = train_rows(full), train_rows(resumed)
    assert sorted(rows_b) == [2, 3, 4]
    for step in rows_b:
        lhs = {k: v for k, v in rows_a[step].items() if not k.startswith("train/time")}
        rhs = {k: v for k, v in rows_b[step].items() if not k.startswith("train/time")}
        assert lhs == rhs and all(v == v for v in lhs.values()), step  # same and finite

    # The inference tools read the architecture from the checkpoint's config.
    loaded = load_generator(full / "checkpoints" / "last.pt", "AtoB")
    assert type(loaded.generator) is type(model.G_AB)


@pytest.mark.parametrize("precision", ["32", "bf16-mixed"])
def test_wgangp_step_applies_the_penalty_to_both_discriminators(monkeypatch, precision) -> None:
    from functools import partial

    from cyclegan.methods.base import Execution
    from cyclegan.methods.cyclegan import CycleGAN as CycleGANMethod
    from cyclegan.parts.losses.adversarial import AdversarialLoss
    from cyclegan.parts.schedule import LRMultiplier

    torch.manual_seed(0)
    penalties = []
    original = AdversarialLoss.penalty_from

    def record(self, scores, x_hat):
        value = original(self, scores, x_hat)
        penalties.append(value)
        return value

    monkeypatch.setattr(AdversarialLoss, "penalty_from", record)
    method = CycleGANMethod(
        networks=network_spec("paper", n_residual_blocks=1, ngf=4, ndf=4),
        loss=build_loss(gan_mode="wgangp", lambda_gp=10.0),
        optimizer=partial(torch.optim.Adam, lr=2e-4, betas=(0.5, 0.999)),
        lr_rule=LRMultiplier("linear", 4, 2),
        channels=(3, 3),
        execution=Execution.plain("cpu", precision=precision),
        seed=0,
        buffer_size=50,
    )
    networks = method.model
    before = [p.detach().clone() for p in networks.D_A.parameters()]
    batch = {"A": torch.rand(1, 3, 32, 32) * 2 - 1, "B": torch.rand(1, 3, 32, 32) * 2 - 1}
    losses = method.training_step(batch)
    assert len(penalties) == 2 and all(p.item() > 0 for p in penalties)  # D_A and D_B
    assert all(torch.isfinite(v) for v in losses.values())
    after = list(networks.D_A.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
