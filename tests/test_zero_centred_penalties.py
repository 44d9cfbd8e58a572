"""R1/R2, the zero-centred gradient penalties on D (cyclegan/parts/losses/adversarial.py): their
value, their gradient against a finite difference, every gan_mode, the lazy schedule, and their
reach into one training step of every method."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cyclegan.parts.losses.adversarial import AdversarialLoss
from cyclegan.parts.networks.patchgan import NLayerDiscriminator
from cyclegan.runtime.strategy import SingleProcess
from cyclegan.training.builder import build_method

from .conftest import TINY
from .test_gan_losses import Linear1x1

MODES = ("lsgan", "vanilla", "hinge", "wgangp")


def plain_and_penalised(
    mode: str, joint: bool, **weights: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """loss_D of one D on one batch without and with the penalties (same GP interpolates)."""
    torch.manual_seed(0)
    D = NLayerDiscriminator(3, ndf=4, n_layers=2, norm="instance").double()
    real, fake = torch.randn(2, 3, 32, 32).double(), torch.randn(2, 3, 32, 32).double()
    values = []
    for loss in (AdversarialLoss(mode, 10.0), AdversarialLoss(mode, 10.0, **weights)):
        gen = torch.Generator().manual_seed(3)
        values.append(loss.discriminator_loss(D, real, fake, gen, joint=joint))
    return values[0], values[1]


def test_r1_value_is_exact_for_a_linear_critic() -> None:
    # D(x) = w x per pixel: grad_x sum D = w everywhere, so ||grad||^2 = w^2 H W per image.
    D, x = Linear1x1(0.5), torch.randn(3, 1, 4, 4, requires_grad=True)
    r1 = AdversarialLoss.zero_centred_penalty(D(x), x, weight=2.0)
    assert r1.item() == pytest.approx(0.5 * 2.0 * 0.25 * 16)
    r1.backward()  # d/dw (w^2 * 16) = 32 w: the penalty trains D's weight
    assert D.conv.weight.grad.item() == pytest.approx(32 * 0.5)


@pytest.mark.parametrize("which", ["lambda_r1", "lambda_r2"])
def test_penalty_gradient_equals_a_finite_difference(which: str) -> None:
    torch.manual_seed(0)
    D = NLayerDiscriminator(3, ndf=4, n_layers=2, norm="none").double()
    real, fake = torch.randn(2, 3, 32, 32).double(), torch.randn(2, 3, 32, 32).double()
    loss, plain = AdversarialLoss("lsgan", None, **{which: 3.0}), AdversarialLoss("lsgan", None)

    def penalty() -> torch.Tensor:  # 1/2 (terms + R) - 1/2 terms = R / 2
        return loss.discriminator_loss(D, real, fake) - plain.discriminator_loss(D, real, fake)

    penalty().backward()
    weights = [m.weight for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert all(w.grad is not None and w.grad.abs().sum() > 0 for w in weights)
    w, idx, h = weights[1], (0, 0, 1, 2), 1e-6
    with torch.no_grad():
        w[idx] += h
    up = penalty().item()  # outside no_grad: the penalty itself differentiates D
    with torch.no_grad():
        w[idx] -= 2 * h
    down = penalty().item()
    assert w.grad[idx].item() == pytest.approx((up - down) / (2 * h), rel=1e-4)


@pytest.mark.parametrize("joint", [False, True])
@pytest.mark.parametrize("mode", MODES)
def test_every_gan_mode_adds_half_the_penalties(mode: str, joint: bool) -> None:
    """loss_D with R1 + R2 = loss_D without + 1/2 (R1 + R2), in separate and joint D calls."""
    plain, penalised = plain_and_penalised(mode, joint, lambda_r1=2.0, lambda_r2=0.5)
    torch.manual_seed(0)
    D = NLayerDiscriminator(3, ndf=4, n_layers=2, norm="instance").double()
    real = torch.randn(2, 3, 32, 32).double().requires_grad_(True)
    fake = torch.randn(2, 3, 32, 32).double().requires_grad_(True)
    r1 = AdversarialLoss.zero_centred_penalty(D(real), real, 2.0)
    r2 = AdversarialLoss.zero_centred_penalty(D(fake), fake, 0.5)
    assert r1 > 0 and r2 > 0
    torch.testing.assert_close(penalised, plain + 0.5 * (r1 + r2), rtol=1e-9, atol=1e-12)


def test_lazy_penalties_apply_on_steps_0_n_2n_scaled_by_n() -> None:
    loss = AdversarialLoss("hinge", None, lambda_r1=0.5, lambda_r2=0.25, reg_every=4)
    weights = [loss.zero_centred_weights(step) for step in range(10)]
    applied = [step for step, w in enumerate(weights) if w != (0.0, 0.0)]
    assert applied == [0, 4, 8]
    assert weights[4] == (2.0, 1.0)  # 4 x the configured weights: the same mean per step
    assert AdversarialLoss("hinge", None).zero_centred_weights(0) == (0.0, 0.0)  # off by default
    torch.manual_seed(0)
    D = NLayerDiscriminator(3, ndf=4, n_layers=2, norm="instance")
    real, fake = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)
    plain = AdversarialLoss("hinge", None).discriminator_loss(D, real, fake)
    values = [loss.discriminator_loss(D, real, fake, step=step) for step in range(6)]
    assert [step for step, v in enumerate(values) if not torch.equal(v, plain)] == [0, 4]


def test_bad_penalty_settings_are_one_line() -> None:
    for kwargs, line in (
        ({"lambda_r1": -1.0}, "loss.lambda_r1=-1.0: must be >= 0 (0 turns the penalty off)"),
        ({"lambda_r2": float("nan")}, "loss.lambda_r2=nan: must be >= 0"),
        ({"reg_every": 0}, "loss.reg_every=0: use a positive integer (1: every step;"),
        ({"reg_every": True}, "loss.reg_every=True: use a positive integer"),
    ):
        with pytest.raises(ValueError) as err:
            AdversarialLoss("lsgan", None, **kwargs)
        assert str(err.value).startswith(line) and "\n" not in str(err.value)


@pytest.mark.parametrize("method", ["cyclegan", "cut"])
def test_one_step_with_r1_changes_only_what_d_learns(method: str, compose_cfg) -> None:
    """CycleGAN steps G before D, so after one step R1 has changed D_A and D_B and not the
    generators; CUT steps D first, so G (trained against the updated D) changes too; F (NCE only) does not."""
    trained = {}
    for r1 in ("0.0", "10.0"):
        cfg = compose_cfg(*TINY, f"method={method}", f"loss.lambda_r1={r1}", "loss.lambda_r2=1.0")
        torch.manual_seed(0)
        m = build_method(cfg, torch.device("cpu"), SingleProcess())
        m.start(steps_per_epoch=3)
        g = torch.Generator().manual_seed(1)
        m.training_step({k: torch.rand(2, 3, 32, 32, generator=g) * 2 - 1 for k in "AB"})
        trained[r1] = {k: v.clone() for k, v in m.model.state_dict().items()}
    a, b = trained["0.0"], trained["10.0"]
    changed = {k.split(".")[0] for k in a if not torch.equal(a[k], b[k])}
    assert changed == ({"D_A", "D_B"} if method == "cyclegan" else {"D", "G"})


@pytest.mark.parametrize("method", ["cyclegan", "cut"])
def test_methods_apply_lazy_r1_on_steps_0_n_2n(method: str, compose_cfg, monkeypatch) -> None:
    """The methods hand their step count to the loss: with reg_every=2, R1 runs on steps 0, 2, 4
    (once per discriminator: CycleGAN's two, CUT's one) at twice its weight, and not between."""
    calls: list[tuple[int, float]] = []
    built: list = []
    original = AdversarialLoss.zero_centred_penalty

    def spy(scores: torch.Tensor, inputs: torch.Tensor, weight: float) -> torch.Tensor:
        calls.append((built[0].steps_done, weight))
        return original(scores, inputs, weight)

    monkeypatch.setattr(AdversarialLoss, "zero_centred_penalty", staticmethod(spy))
    cfg = compose_cfg(*TINY, f"method={method}", "loss.lambda_r1=0.5", "loss.reg_every=2")
    built.append(build_method(cfg, torch.device("cpu"), SingleProcess()))
    m = built[0]
    m.start(steps_per_epoch=3)
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        m.training_step({k: torch.rand(2, 3, 32, 32, generator=g) * 2 - 1 for k in "AB"})
        m.after_step()
    per_step = 2 if method == "cyclegan" else 1
    assert calls == [(step, 1.0) for step in (0, 2, 4) for _ in range(per_step)]
