"""CUT and FastCUT (Park et al., 2020, "Contrastive Learning for Unpaired Image-to-Image Translation").

One generator G: A -> B, one discriminator D on domain B, and the patch sampler F (per-layer MLP heads
on G's encoder features). No cycle, no second generator, no replay buffer. Per step, in the order
of the reference code (taesungp/contrastive-unpaired-translation, ``CUTModel.optimize_parameters``):

    fake_B = G(x), idt_B = G(y)                      (x ~ A, y ~ B; idt_B only with nce_idt)
    loss_D     = 0.5 * (gan(D(fake_B.detach()), fake) + gan(D(y), real))    -> step D
    loss_G_GAN = lambda_GAN * gan(D(fake_B), real)                          (D frozen, updated)
    loss_NCE   = NCE(x, fake_B),   loss_NCE_Y = NCE(y, idt_B)
    loss_G     = loss_G_GAN + 0.5 * (loss_NCE + loss_NCE_Y)   (CUT: nce_idt)
               = loss_G_GAN + loss_NCE                        (FastCUT)     -> step G and F

NCE is the PatchNCE loss over the tapped layers (`cyclegan.parts.nce.objective`). FastCUT flips the
whole input batch horizontally with probability 1/2 per step (flip equivariance).

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
from cyclegan.methods.base import Batch, OptimizerFactory, TrainingMethod, set_requires_grad
from cyclegan.parts.losses.cyclegan import CycleGANLoss
from cyclegan.parts.nce.feature_taps import check_nce_layers, check_num_patches, feature_shapes
from cyclegan.parts.nce.objective import (
    CUTGeneratorPass,
    CUTLossSettings,
    adversarial_loss,
    generator_total,
)
from cyclegan.parts.networks.cut import DEFAULT_NCE_LAYERS, CUTNetworks
from cyclegan.parts.networks.cut_resnet import CUTResnetGenerator, init_xavier_normal
from cyclegan.parts.networks.resnet import CycleGAN as CycleGANNetworks
from cyclegan.parts.networks.resnet import Generator, count_parameters, define_generator
from cyclegan.parts.schedule import LRMultiplier
from cyclegan.runtime.strategy import SingleProcess

PATCH_SEED_OFFSET = 2  # the CycleGAN replay buffers use seed + 1


class CUT(TrainingMethod):
    """CUT/FastCUT; the two presets differ only in their settings (conf/method/cut|fastcut.yaml)."""

    progress_keys = ("loss_G", "loss_D", "loss_NCE")

    def __init__(
        self,
        networks: CycleGANNetworks,
        criterion: CycleGANLoss,
        make_optimizer: OptimizerFactory,
        lr_rule: LRMultiplier,
        device: torch.device,
        lambda_GAN: float = 1.0,
        lambda_NCE: float = 1.0,
        nce_idt: bool = True,
        flip_equivariance: bool = False,
        nce_layers: Sequence[int] | None = None,
        num_patches: int = 256,
        nce_T: float = 0.07,
        netF_nc: int = 256,
        all_negatives_from_minibatch: bool = False,
        init_gain: float | None = 0.02,
        precision: str = "32",
        compile: bool = False,
        channels_last: bool = False,
        strategy: SingleProcess | None = None,
        seed: int = 0,
    ) -> None:
        """`networks`/`criterion`: the model and loss groups' (CUT keeps G_AB, D_B, gan_mode);
        `init_gain`: CUT's xavier init of G, D, F (None: the model's). Keys: conf/method/cut.yaml."""
        if compile:
            raise ConfigError("trainer.compile=true is not supported with method=cut; set it false")
        settings = CUTLossSettings(
            lambda_GAN=lambda_GAN,
            lambda_NCE=lambda_NCE,
            nce_idt=nce_idt,
            flip_equivariance=flip_equivariance,
            nce_layers=default_layers(generator_kind(networks.G_AB), nce_layers),
            num_patches=num_patches,
            nce_T=nce_T,
            all_negatives_from_minibatch=all_negatives_from_minibatch,
            gan_mode=criterion.gan_mode,
        )
        nets = cut_networks(networks, settings, netF_nc, init_gain)
        super().__init__(nets, make_optimizer, lr_rule, device, precision, channels_last)
        m, strategy = self.model, strategy or SingleProcess()
        self.criterion = settings
        # G and F in one module: one DDP call per step, however often G runs inside it.
        self.generator_pass = strategy.wrap(CUTGeneratorPass(m.G, m.F, settings), device)
        self.discriminator = strategy.wrap(m.D, device)
        self.opt_G = self.add_optimizer("G", m.G.parameters())
        self.opt_D = self.add_optimizer("D", m.D.parameters())
        # F has no optimizer when lambda_NCE = 0 (it has no parameters then), as in the reference.
        self.opt_F = self.add_optimizer("F", m.F.parameters()) if m.F is not None else None
        # The same seed on every rank (not strategy.seed): see the module docstring.
        self.patch_rng = torch.Generator().manual_seed(seed + PATCH_SEED_OFFSET)

    @staticmethod
    def check_config(method: Mapping[str, Any], model: Mapping[str, Any], img_size: int) -> None:
        """One-line `ConfigError`s for settings that cannot work, before any data or training
        (called by `cyclegan.config.schema.validate`): weights, temperature, NCE layers outside the
        generator, more patches than a tapped feature map has positions, trainer.compile."""
        if method.get("compile"):
            raise ConfigError("trainer.compile=true is not supported with method=cut; set it false")
        kind = str(model["generator"])
        if kind not in DEFAULT_NCE_LAYERS:
            raise ConfigError(
                f"method=cut taps a ResNet generator's layers; model.generator={kind} has none in "
                f"one sequence: use model.generator={'|'.join(DEFAULT_NCE_LAYERS)}"
            )
        layers = default_layers(kind, method.get("nce_layers"))
        CUTLossSettings(
            lambda_GAN=method["lambda_GAN"],
            lambda_NCE=method["lambda_NCE"],
            nce_layers=layers,
            num_patches=method["num_patches"],
            nce_T=method["nce_T"],
        )
        channels = model.get("channels_A") or model["channels"]  # G: A -> B reads A's channels
        out = model.get("channels_B") or model["channels"]
        with torch.device("meta"):  # shapes only: no weights are allocated or initialised
            G = define_generator(kind, channels, out, model["ngf"], model["n_residual_blocks"])
        layers = check_nce_layers(G.model, layers)
        shapes = feature_shapes(G.model, layers, channels, img_size, img_size)
        check_num_patches(shapes, layers, method["num_patches"])

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One update of D, then of G and F (equations in the module docstring)."""
        real_A, real_B = batch["A"], batch["B"]
        s, m, n = self.criterion, self.model, real_A.shape[0]
        flipped = s.flip_equivariance and bool(torch.rand((), generator=self.patch_rng) < 0.5)
        with self.precision.autocast():
            fake_B, _, nce, _ = self.generator_pass(real_A, real_B, flipped, self.patch_rng)

        # D on the current fake (CUT keeps no replay buffer); real and fake in one call, which
        # gives the same scores as two (instance norm is per sample).
        self.opt_D.zero_grad(set_to_none=True)
        with self.precision.autocast():
            pred_real, pred_fake = self.discriminator(torch.cat([real_B, fake_B.detach()])).split(n)
            loss_D_real = adversarial_loss(pred_real, True, s.gan_mode)
            loss_D_fake = adversarial_loss(pred_fake, False, s.gan_mode)
            loss_D = 0.5 * (loss_D_fake + loss_D_real)
        self.precision.backward_and_step(loss_D, self.opt_D)

        # G and F against the updated D, frozen: it only passes gradient to fake_B.
        set_requires_grad([m.D], False)
        self.opt_G.zero_grad(set_to_none=True)
        if self.opt_F is not None:
            self.opt_F.zero_grad(set_to_none=True)
        with self.precision.autocast():
            if s.lambda_GAN > 0:
                loss_G_GAN = s.lambda_GAN * adversarial_loss(m.D(fake_B), True, s.gan_mode)
            else:
                loss_G_GAN = torch.zeros((), device=fake_B.device)
            loss_G = generator_total(loss_G_GAN, nce["loss_NCE"], nce["loss_NCE_Y"], s)
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
            "loss_D": loss_D,
            "loss_D_real": loss_D_real,
            "loss_D_fake": loss_D_fake,
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


def generator_kind(G: nn.Module) -> str:
    """`model.generator` of a built generator: cut, resnet or paper (the ones CUT can tap)."""
    if isinstance(G, CUTResnetGenerator):
        return "cut"
    if isinstance(G, Generator):
        return "resnet" if G.upsampling == "nearest" else "paper"
    raise ConfigError(
        f"method=cut taps a ResNet generator's layers, not a {type(G).__name__}; "
        "use model.generator=cut|resnet|paper"
    )


def cut_networks(
    networks: CycleGANNetworks,
    settings: CUTLossSettings,
    netF_nc: int,
    init_gain: float | None,
) -> CUTNetworks:
    """G_AB and D_B of the model group's container, with a patch sampler built from G's layers.

    G_BA and D_A are dropped: CUT is one-sided (they were only built because the model group
    builds CycleGAN's container, which CycleGAN and CUT share)."""
    G, D = networks.G_AB, networks.D_B
    if init_gain is not None:
        init_xavier_normal(G, init_gain)
        init_xavier_normal(D, init_gain)
    channels = int(G.model[1].in_channels)  # the first conv, after the input padding
    return CUTNetworks(
        G, D, settings.nce_layers, netF_nc, settings.lambda_NCE > 0, channels, init_gain or 0.02
    )
