"""CUT and FastCUT (Park et al., 2020, "Contrastive Learning for Unpaired Image-to-Image Translation").

One generator G: A -> B, one discriminator D on domain B, and the patch sampler F (per-layer MLP heads
on G's encoder features). No cycle, no second generator, no replay buffer. Per step, in the order
of the reference code (taesungp/contrastive-unpaired-translation, ``CUTModel.optimize_parameters``):

    fake_B = G(x), idt_B = G(y)                      (x ~ A, y ~ B; idt_B only with nce_idt)
    loss_D     = 0.5 * (gan(D(y), real) + gan(D(fake_B.detach()), fake))    -> step D
    loss_G_GAN = lambda_GAN * gan(D(fake_B), real)                          (D frozen, updated)
    loss_NCE   = NCE(x, fake_B),   loss_NCE_Y = NCE(y, idt_B)
    loss_G     = loss_G_GAN + 0.5 * (loss_NCE + loss_NCE_Y)   (CUT: nce_idt)
               = loss_G_GAN + loss_NCE                        (FastCUT)     -> step G and F

NCE is the PatchNCE loss over the tapped layers (`cyclegan.parts.nce.generator_pass`); `gan` is the
objective `loss.gan_mode` names, through the adversarial module CycleGAN uses too (wgangp adds its
penalty to loss_D, and so do R1/R2 when loss.lambda_r1/lambda_r2 > 0). FastCUT flips the whole input batch horizontally with probability 1/2 per step
(flip equivariance).

Settings: the loss weights are the `loss` group's (loss=cut|fastcut: lambda_GAN, lambda_NCE,
nce_idt, gan_mode, lambda_gp), the NCE knobs the `method` group's (nce_layers, num_patches,
nce_T, netF_nc, all_negatives_from_minibatch, flip_equivariance), the networks the `model`
group's (model=cut by default).

Patch positions and the flip are drawn from `patch_rng`, a torch generator that is part of the
checkpoint (the reference uses NumPy's global RNG), so a resumed run draws the same patches. Every
DDP rank seeds it alike and draws alike, so the ranks use the same positions for their images, as
one process does for all images of a batch: N ranks x b images give the gradients of one process
with N*b images.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from cyclegan.errors import ConfigError
from cyclegan.methods.base import (
    Batch,
    Execution,
    OptimizerFactory,
    TrainingMethod,
    set_requires_grad,
)
from cyclegan.methods.cut_networks import CUTNetworks
from cyclegan.parts.losses.cut import CUTLoss
from cyclegan.parts.nce.feature_taps import DEFAULT_NCE_LAYERS, check_nce_layers, feature_shapes
from cyclegan.parts.nce.generator_pass import CUTGeneratorPass, NCESettings
from cyclegan.parts.networks.factory import count_parameters, has_batch_norm
from cyclegan.parts.networks.spec import NetworkSpec
from cyclegan.parts.schedule import LRMultiplier

PATCH_SEED_OFFSET = 2  # the CycleGAN replay buffers use seed + 1


class CUT(TrainingMethod):
    """CUT/FastCUT; the two presets differ only in their settings (conf/method, conf/loss)."""

    name = "cut"
    loss_type = CUTLoss
    features = frozenset()  # no torch.compile or CUDA graphs yet: refused in one line
    directions = ("AB",)  # one-sided
    loss_names = (
        "loss_G", "loss_G_GAN", "loss_NCE", "loss_NCE_Y", "loss_D", "loss_D_real", "loss_D_fake",
    )  # fmt: skip
    progress_keys = ("loss_G", "loss_D", "loss_NCE")

    def __init__(
        self,
        *,
        networks: NetworkSpec,
        loss: CUTLoss,
        optimizer: OptimizerFactory,
        lr_rule: LRMultiplier,
        channels: tuple[int, int],
        execution: Execution,
        seed: int,
        flip_equivariance: bool,
        nce_layers: Sequence[int] | None,
        num_patches: int,
        nce_T: float,
        netF_nc: int,
        all_negatives_from_minibatch: bool,
    ) -> None:
        """The method's own settings are conf/method/cut.yaml's keys; the rest is the builder's."""
        self.check_settings(
            {"nce_layers": nce_layers, "num_patches": num_patches, "nce_T": nce_T},
            loss, networks, channels, None,
        )  # fmt: skip
        layers = default_layers(str(networks.generator), nce_layers)
        self.nce = NCESettings(
            layers, num_patches, nce_T, all_negatives_from_minibatch, loss.lambda_NCE, loss.nce_idt
        )
        self.flip_equivariance = flip_equivariance
        container = CUTNetworks(networks, *channels, layers, netF_nc, loss.uses_nce)
        super().__init__(container, networks, channels, optimizer, lr_rule, execution)
        m, strategy, device = self.model, execution.strategy, execution.device
        self.criterion = loss
        # G and F in one module: one DDP call per step, however often G runs inside it.
        self.generator_pass = strategy.wrap(CUTGeneratorPass(m.G, m.F, self.nce), device)
        self.discriminator = strategy.wrap(m.D, device)
        self.joint_D = not has_batch_norm(m.D)  # real and fake in one D call
        self.opt_G = self.add_optimizer("G", m.G.parameters())
        self.opt_D = self.add_optimizer("D", m.D.parameters())
        # F has no optimizer when lambda_NCE = 0 (it has no parameters then), as in the reference.
        self.opt_F = self.add_optimizer("F", m.F.parameters()) if m.F is not None else None
        # The same seed on every rank (not strategy.seed): see the module docstring.
        self.patch_rng = torch.Generator().manual_seed(seed + PATCH_SEED_OFFSET)

    @staticmethod
    def check_settings(
        method: Mapping[str, Any],
        loss: CUTLoss,
        networks: NetworkSpec,
        channels: tuple[int, int],
        img_size: int | None,
    ) -> None:
        """One-line `ConfigError`s for settings that cannot work, before any data or training
        (`cyclegan.methods.settings.check_method` calls it): a generator CUT cannot tap, NCE
        layers outside it, a temperature or patch count that is not positive, the identity term
        across channel counts."""
        if loss.uses_identity and channels[0] != channels[1]:
            raise ConfigError(
                f"loss.nce_idt=true feeds B images to G, whose input is A's: it needs "
                f"dataset.channels_A == dataset.channels_B, got {channels[0]} and {channels[1]}; "
                "set loss.nce_idt=false"
            )
        kind = str(networks.generator)
        if kind not in DEFAULT_NCE_LAYERS:
            raise ConfigError(
                f"method=cut taps a ResNet generator's layers; model.generator={kind} has none in "
                f"one sequence: use model.generator={'|'.join(DEFAULT_NCE_LAYERS)}"
            )
        if not method["nce_T"] > 0:
            raise ConfigError(f"method.nce_T={method['nce_T']}: must be > 0 (CUT uses 0.07)")
        patches = method["num_patches"]
        if isinstance(patches, bool) or not isinstance(patches, int) or patches < 1:
            raise ConfigError(f"method.num_patches={patches}: use a positive integer (CUT: 256)")
        layers = default_layers(kind, method.get("nce_layers"))
        with torch.device("meta"):  # shapes only: no weights are allocated or initialised
            G = networks.build_generator(*channels)
        check_nce_layers(G.model, layers)
        if img_size is not None:
            feature_shapes(G.model, layers, channels[0], img_size, img_size)

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One update of D, then of G and F (equations in the module docstring)."""
        real_A, real_B = batch["A"], batch["B"]
        loss, m = self.criterion, self.model
        flipped = self.flip_equivariance and bool(torch.rand((), generator=self.patch_rng) < 0.5)
        with self.precision.autocast():
            fake_B, _, nce, _ = self.generator_pass(real_A, real_B, flipped, self.patch_rng)

        # D on the current fake (CUT keeps no replay buffer); real and fake in one call, which
        # gives the same scores as two with per-image norms.
        self.opt_D.zero_grad(set_to_none=True)
        with self.precision.autocast():
            terms = loss.adversarial.discriminator_terms(
                self.discriminator, real_B, fake_B, joint=self.joint_D, step=self.steps_done
            )
        self.precision.backward_and_step(terms["loss_D"], self.opt_D)

        # G and F against the updated D, frozen: it only passes gradient to fake_B.
        set_requires_grad([m.D], False)
        self.opt_G.zero_grad(set_to_none=True)
        if self.opt_F is not None:
            self.opt_F.zero_grad(set_to_none=True)
        with self.precision.autocast():
            if loss.lambda_GAN > 0:
                loss_G_GAN = loss.generator_gan(m.D(fake_B))
            else:
                loss_G_GAN = torch.zeros((), device=fake_B.device)
            loss_G = loss.generator_total(loss_G_GAN, nce["loss_NCE"], nce["loss_NCE_Y"])
        self.scaler.scale(loss_G).backward()
        self.scaler.step(self.opt_G)
        if self.opt_F is not None:
            self.scaler.step(self.opt_F)
        set_requires_grad([m.D], True)
        self.scaler.update()
        losses = {
            "loss_G": loss_G,
            "loss_G_GAN": loss_G_GAN,
            "loss_NCE": nce["loss_NCE"],
            "loss_NCE_Y": nce["loss_NCE_Y"],
            "loss_D": terms["loss_D"],
            "loss_D_real": terms["loss_D_real"],
            "loss_D_fake": terms["loss_D_fake"],
        }
        return {k: v.detach().float() for k, v in losses.items()}

    def translators(self) -> dict[str, nn.Module]:
        """One-sided: A -> B only."""
        return {"AB": self.model.G}

    def describe(self) -> str:
        m = self.model
        F = count_parameters(m.F) if m.F is not None else 0
        return (
            f"G {count_parameters(m.G) / 1e6:.2f}M params, D {count_parameters(m.D) / 1e6:.2f}M, "
            f"F {F / 1e6:.2f}M"
        )

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        """The shared state plus the patch generator (the same on every rank)."""
        return {**super().state_dict(), "patch_rng": self.patch_rng.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        if "patch_rng" not in state:
            raise ConfigError(
                "the checkpoint has no CUT patch generator state: it was not written by "
                "method=cut/fastcut; resume it with the method it was trained with"
            )
        self.patch_rng.set_state(state["patch_rng"])


def default_layers(kind: str, nce_layers: Sequence[int] | None) -> tuple[int, ...]:
    """The configured NCE layers, or the generator's equivalent of CUT's 0,4,8,12,16 when None."""
    return DEFAULT_NCE_LAYERS[kind] if nce_layers is None else tuple(int(i) for i in nce_layers)
