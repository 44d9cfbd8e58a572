"""The training step: every network learns, D gets no gradient from the generator loss, and the
batched generator passes compute the same numbers as separate ones."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cyclegan.methods.cyclegan import CycleGAN as CycleGANMethod

from .conftest import as_batch, make_method


def make_trainer(tmp_path: Path, lambda_id: float = 5.0) -> CycleGANMethod:
    return make_method(lambda_id=lambda_id)


def batch(n: int = 2, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1, torch.rand(
        n, 3, size, size, generator=g
    ) * 2 - 1


def test_step_updates_all_four_networks_and_returns_named_losses(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    losses = trainer.training_step(as_batch(*batch()))
    assert set(losses) == {
        "loss_G",
        "loss_GAN",
        "loss_cycle",
        "loss_identity",
        "loss_D_A",
        "loss_D_B",
        "loss_D",
    }
    assert all(torch.isfinite(v) and v.ndim == 0 for v in losses.values())
    expected_G = losses["loss_GAN"] + 10 * losses["loss_cycle"] + 5 * losses["loss_identity"]
    torch.testing.assert_close(losses["loss_G"], expected_G)
    after = trainer.model.state_dict()
    for net in ("G_AB", "G_BA", "D_A", "D_B"):
        changed = [k for k in before if k.startswith(net) and not torch.equal(before[k], after[k])]
        assert changed, f"{net} did not change"
    assert len(trainer.buffer_A) == len(trainer.buffer_B) == 2


def test_discriminators_get_no_gradient_from_the_generator_update(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path)
    seen = {}
    original_step = trainer.opt_G.step

    def spy_step(*args, **kwargs):
        seen["D_grads"] = [
            p.grad for p in [*trainer.model.D_A.parameters(), *trainer.model.D_B.parameters()]
        ]
        seen["G_grads"] = [p.grad for p in trainer.model.G_AB.parameters()]
        return original_step(*args, **kwargs)

    trainer.opt_G.step = spy_step
    trainer.training_step(as_batch(*batch()))
    assert all(g is None for g in seen["D_grads"])
    assert all(g is not None for g in seen["G_grads"])
    assert all(p.requires_grad for p in trainer.model.D_A.parameters())  # unfrozen again for D


def test_batched_generator_pass_equals_separate_calls(tmp_path: Path) -> None:
    G = make_trainer(tmp_path).model.G_AB
    a, b = batch()
    together = G(torch.cat([a, b]))
    torch.testing.assert_close(together[:2], G(a), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(together[2:], G(b), atol=1e-6, rtol=1e-5)


def test_step_matches_the_seed_formulation(tmp_path: Path) -> None:
    """The losses of our step equal a direct transcription of the seed's unbatched code."""
    trainer = make_trainer(tmp_path)
    m, crit = trainer.model, trainer.criterion
    real_A, real_B = batch()
    with torch.no_grad():
        loss_id = (
            crit.identity(m.G_BA(real_A), real_A) + crit.identity(m.G_AB(real_B), real_B)
        ) / 2
        fake_B, fake_A = m.G_AB(real_A), m.G_BA(real_B)
        loss_GAN = (crit.gan(m.D_B(fake_B), True) + crit.gan(m.D_A(fake_A), True)) / 2
        loss_cycle = (crit.cycle(m.G_BA(fake_B), real_A) + crit.cycle(m.G_AB(fake_A), real_B)) / 2
    losses = trainer.training_step(as_batch(real_A, real_B))
    torch.testing.assert_close(losses["loss_identity"], loss_id, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(losses["loss_GAN"], loss_GAN, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(losses["loss_cycle"], loss_cycle, atol=1e-6, rtol=1e-5)


def test_zero_identity_weight_skips_the_identity_pass(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, lambda_id=0.0)
    losses = trainer.training_step(as_batch(*batch()))
    assert losses["loss_identity"].item() == 0.0
    torch.testing.assert_close(losses["loss_G"], losses["loss_GAN"] + 10 * losses["loss_cycle"])


def test_discriminator_step_equals_separate_real_and_fake_calls(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path)
    D, crit = trainer.model.D_A, trainer.criterion
    real, fake = batch()
    with torch.no_grad():
        expected = crit.discriminator(D(real), D(fake))
    loss = trainer.discriminator_step(D, trainer.opt_D_A, real, fake)
    torch.testing.assert_close(loss, expected, atol=1e-6, rtol=1e-5)


def make_variant(tmp_path: Path, **options) -> CycleGANMethod:
    return make_method(**options)


def two_steps(trainer: CycleGANMethod) -> list[dict[str, float]]:
    a, b = batch()
    return [
        {k: float(v) for k, v in trainer.training_step(as_batch(a, b)).items()} for _ in range(2)
    ]


def test_channels_last_matches_the_default_layout(tmp_path: Path) -> None:
    reference = two_steps(make_variant(tmp_path))
    nhwc = two_steps(make_variant(tmp_path, channels_last=True))
    for ref, got in zip(reference, nhwc, strict=True):
        assert got == pytest.approx(ref, rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
def test_mixed_precision_trains_close_to_fp32(precision: str, tmp_path: Path) -> None:
    reference = two_steps(make_variant(tmp_path))
    trainer = make_variant(tmp_path, precision=precision)
    mixed = two_steps(trainer)
    # fp16's loss scaler starts high and skips the first updates while it finds its scale, so
    # only the first step (same weights) is comparable there.
    compared = 2 if precision == "bf16-mixed" else 1
    for ref, got in zip(reference[:compared], mixed[:compared], strict=True):
        assert got == pytest.approx(ref, rel=0.05, abs=0.02)  # reduced-precision matmuls
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())  # master weights
    assert trainer.scaler.is_enabled() == (precision == "16-mixed")


@pytest.mark.slow
def test_compiled_step_agrees_with_eager(tmp_path: Path) -> None:
    eager = two_steps(make_variant(tmp_path))
    compiled_trainer = make_variant(tmp_path, compile=True)
    compiled = two_steps(compiled_trainer)
    for ref, got in zip(eager, compiled, strict=True):
        assert got == pytest.approx(ref, rel=1e-4, abs=1e-5)
    # The compiled wrappers share the modules' weights: state-dict keys are unchanged.
    assert not any("_orig_mod" in k for k in compiled_trainer.model.state_dict())
