"""Loss values on hand-made tensors."""

import math

import pytest
import torch

from cyclegan.parts.losses.cyclegan import CycleGANLoss

from .conftest import build_loss


def test_lsgan_is_mean_squared_error_to_the_label() -> None:
    crit = build_loss(gan_mode="lsgan")
    pred = torch.tensor([[0.0, 0.5], [1.0, 2.0]])
    assert crit.gan(pred, True).item() == pytest.approx((1 + 0.25 + 0 + 1) / 4)
    assert crit.gan(pred, False).item() == pytest.approx((0 + 0.25 + 1 + 4) / 4)


def test_vanilla_is_binary_cross_entropy_on_logits() -> None:
    crit = build_loss(gan_mode="vanilla")
    pred = torch.tensor([0.0, 2.0])
    expected_real = (math.log(2) + math.log(1 + math.exp(-2))) / 2
    expected_fake = (math.log(2) + math.log(1 + math.exp(2))) / 2
    assert crit.gan(pred, True).item() == pytest.approx(expected_real, rel=1e-6)
    assert crit.gan(pred, False).item() == pytest.approx(expected_fake, rel=1e-6)


def test_cycle_and_identity_are_l1() -> None:
    a = torch.zeros(1, 3, 2, 2)
    b = torch.full((1, 3, 2, 2), 0.5)
    b[0, 0, 0, 0] = -1.5
    expected = (11 * 0.5 + 1.5) / 12
    assert CycleGANLoss.cycle(b, a).item() == pytest.approx(expected)
    assert CycleGANLoss.identity(b, a).item() == pytest.approx(expected)


def test_generator_total_weights_terms() -> None:
    crit = build_loss(lambda_cyc=10.0, lambda_id=5.0)
    total = crit.generator_total(torch.tensor(1.0), torch.tensor(0.2), torch.tensor(0.1))
    assert total.item() == pytest.approx(1.0 + 10 * 0.2 + 5 * 0.1)
    crit = build_loss(lambda_cyc=3.0, lambda_id=0.0)
    assert crit.generator_total(
        torch.tensor(1.0), torch.tensor(0.2), torch.tensor(0.1)
    ).item() == pytest.approx(1.6)


def test_discriminator_loss_is_halved_sum() -> None:
    crit = build_loss(gan_mode="lsgan")
    real, fake = torch.full((2, 1, 3, 3), 0.8), torch.full((2, 1, 3, 3), 0.3)
    assert crit.discriminator(real, fake).item() == pytest.approx(0.5 * (0.2**2 + 0.3**2))


def test_rejects_negative_weights_and_unknown_mode() -> None:
    with pytest.raises(ValueError, match="lambda_cyc"):
        build_loss(lambda_cyc=-1)
    with pytest.raises(ValueError):
        build_loss(gan_mode="wgan")
