"""The four adversarial objectives, and WGAN-GP's penalty reaching the discriminator."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from cyclegan.parts.losses.adversarial import AdversarialLoss
from cyclegan.parts.networks.patchgan import NLayerDiscriminator

REAL = torch.tensor([[[[2.0, -0.5], [0.5, 1.0]]]])  # D(x) scores, (1, 1, 2, 2)
FAKE = torch.tensor([[[[-2.0, 0.5], [0.0, -1.5]]]])


@pytest.mark.parametrize(
    ("mode", "L_G", "L_D"),
    [
        (
            "lsgan",
            ((FAKE - 1) ** 2).mean(),
            0.5 * (((REAL - 1) ** 2).mean() + (FAKE**2).mean()),
        ),
        (
            "vanilla",
            F.softplus(-FAKE).mean(),
            0.5 * (F.softplus(-REAL).mean() + F.softplus(FAKE).mean()),
        ),
        (
            "hinge",
            -FAKE.mean(),
            0.5 * (F.relu(1 - REAL).mean() + F.relu(1 + FAKE).mean()),
        ),
    ],
)
def test_losses_follow_their_equations(mode: str, L_G: torch.Tensor, L_D: torch.Tensor) -> None:
    loss = AdversarialLoss(mode, 10.0)
    torch.testing.assert_close(loss.generator(FAKE), L_G)
    torch.testing.assert_close(loss.discriminator(REAL, FAKE), L_D)
    assert not loss.uses_penalty


def test_hinge_saturates_where_it_should() -> None:
    loss = AdversarialLoss("hinge", 10.0)
    # Confident, correct scores (real >= 1, fake <= -1) cost the discriminator nothing.
    assert loss.discriminator(torch.full((1, 1, 2, 2), 3.0), torch.full((1, 1, 2, 2), -2.0)) == 0


class Linear1x1(nn.Module):
    """D(x) = w * x per pixel: grad of the summed map is w everywhere, so GP is known exactly."""

    def __init__(self, w: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.fill_(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def test_gradient_penalty_value_is_exact_for_a_linear_critic() -> None:
    loss = AdversarialLoss("wgangp", lambda_gp=10.0)
    D = Linear1x1(0.1)
    real, fake = torch.randn(3, 1, 4, 4), torch.randn(3, 1, 4, 4)
    gp = loss.gradient_penalty(D, real, fake)
    # ||grad|| = |w| * sqrt(H * W) = 0.1 * 4 for every interpolate.
    assert gp.item() == pytest.approx(10.0 * (0.4 - 1.0) ** 2, rel=1e-5)
    # Its gradient w.r.t. w: d/dw 10 (4w - 1)^2 = 80 (4w - 1).
    gp.backward()
    assert D.conv.weight.grad.item() == pytest.approx(80 * (0.4 - 1.0), rel=1e-5)


def test_penalty_gradient_reaches_every_discriminator_weight() -> None:
    torch.manual_seed(0)
    D = NLayerDiscriminator(3, ndf=4, n_layers=2, norm="none").double()
    loss = AdversarialLoss("wgangp", lambda_gp=10.0)
    real, fake = torch.randn(2, 3, 32, 32).double(), torch.randn(2, 3, 32, 32).double()
    gen = torch.Generator().manual_seed(1)
    gp = loss.gradient_penalty(D, real, fake, generator=gen)
    gp.backward()
    weights = [m.weight for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert all(w.grad is not None and w.grad.abs().sum() > 0 for w in weights)
    # The backpropagated gradient equals a finite difference of the penalty (same interpolates).
    w = weights[1]
    idx = (0, 0, 1, 2)
    h = 1e-6
    with torch.no_grad():
        w[idx] += h
    up = loss.gradient_penalty(D, real, fake, torch.Generator().manual_seed(1)).item()
    with torch.no_grad():
        w[idx] -= 2 * h
    down = loss.gradient_penalty(D, real, fake, torch.Generator().manual_seed(1)).item()
    assert w.grad[idx].item() == pytest.approx((up - down) / (2 * h), rel=1e-4)


def test_wgangp_discriminator_loss_includes_penalty() -> None:
    torch.manual_seed(0)
    D = NLayerDiscriminator(3, ndf=4, n_layers=2, norm="instance")
    loss = AdversarialLoss("wgangp", lambda_gp=10.0)
    real, fake = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32, requires_grad=True)
    total = loss.discriminator_loss(D, real, fake, torch.Generator().manual_seed(3))
    gp = loss.gradient_penalty(D, real, fake, torch.Generator().manual_seed(3))
    critic = D(fake).mean() - D(real).mean()
    torch.testing.assert_close(total, 0.5 * (critic + gp))
    assert gp > 0
    total.backward()
    assert fake.grad is None  # the fake is detached: D's loss never trains G
    torch.testing.assert_close(loss.generator(D(fake)), -D(fake).mean())


def test_lsgan_discriminator_loss_scores_real_and_fake_separately() -> None:
    D = nn.BatchNorm2d(1)  # batch statistics: a joint call would mix real and fake
    loss = AdversarialLoss("lsgan", 10.0)
    real, fake = torch.randn(2, 1, 3, 3) + 3, torch.randn(2, 1, 3, 3)
    torch.testing.assert_close(
        loss.discriminator_loss(D, real, fake), loss.discriminator(D(real), D(fake))
    )


def test_bad_input_is_one_line_naming_the_fix() -> None:
    for bad in (None, 0.0):
        with pytest.raises(
            ValueError, match=r"wgangp needs a gradient-penalty weight.*loss\.lambda_gp=10"
        ) as e:
            AdversarialLoss("wgangp", lambda_gp=bad)
        assert "\n" not in str(e.value)
    with pytest.raises(
        ValueError,
        match=r"unknown loss\.gan_mode 'wgan'; choose one of lsgan, vanilla, hinge, wgangp",
    ):
        AdversarialLoss("wgan", 10.0)
    with pytest.raises(ValueError, match="lambda_gp must be >= 0"):
        AdversarialLoss("lsgan", lambda_gp=-1)
    with pytest.raises(ValueError, match="needs its gradient penalty"):
        AdversarialLoss("wgangp", 10.0).discriminator(REAL, FAKE)
    with pytest.raises(ValueError, match="takes no gradient penalty"):
        AdversarialLoss("hinge", 10.0).discriminator(REAL, FAKE, torch.tensor(1.0))
    with pytest.raises(ValueError, match="one shape"):
        AdversarialLoss("wgangp", 10.0).gradient_penalty(
            Linear1x1(1), torch.zeros(2, 1, 4, 4), torch.zeros(1, 1, 4, 4)
        )
    # lambda_gp is ignored (and may be anything >= 0) for the other modes: sweeps keep the default.
    assert AdversarialLoss("lsgan", lambda_gp=10).lambda_gp == 10


def test_penalty_backpropagates_through_spectral_norm_and_pixel_discriminator() -> None:
    from cyclegan.parts.networks.factory import build_discriminator
    from cyclegan.parts.networks.patchgan import add_spectral_norm

    torch.manual_seed(0)
    loss = AdversarialLoss("wgangp", 10.0)
    for kind in ("basic", "pixel"):
        D = add_spectral_norm(build_discriminator(kind, 3, ndf=4, n_layers_D=3, norm="none"))
        gp = loss.gradient_penalty(D, torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32))
        gp.backward()
        originals = [
            m.parametrizations.weight.original for m in D.modules() if isinstance(m, nn.Conv2d)
        ]
        assert all(
            w.grad is not None and torch.isfinite(w.grad).all() and w.grad.abs().sum() > 0
            for w in originals
        )


@pytest.mark.parametrize("mode", ["lsgan", "hinge", "wgangp"])
def test_joint_call_equals_separate_calls_for_per_image_norms(mode: str) -> None:
    torch.manual_seed(0)
    D = NLayerDiscriminator(3, ndf=4, n_layers=2, norm="instance")
    loss = AdversarialLoss(mode, 10.0)
    real, fake = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)
    grads = []
    values = []
    for joint in (False, True):
        D.zero_grad()
        value = loss.discriminator_loss(
            D, real, fake, torch.Generator().manual_seed(5), joint=joint
        )
        value.backward()
        values.append(value.detach())
        grads.append([p.grad.clone() for p in D.parameters()])
    torch.testing.assert_close(values[0], values[1], atol=1e-6, rtol=1e-5)
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)
