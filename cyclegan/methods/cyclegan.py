"""CycleGAN (Zhu et al. 2017) as the seed article trains it: two generators, two discriminators,
a replay buffer of past fakes for each discriminator.

Generators (D_A, D_B frozen), each term averaged over the two directions as in the seed:
    loss_identity = (|G_BA(A) - A|_1 + |G_AB(B) - B|_1) / 2
    loss_GAN      = (gan(D_B(G_AB(A)), real) + gan(D_A(G_BA(B)), real)) / 2
    loss_cycle    = (|G_BA(G_AB(A)) - A|_1 + |G_AB(G_BA(B)) - B|_1) / 2
    loss_G        = loss_GAN + lambda_cyc * loss_cycle + lambda_id * loss_identity
Discriminators, on real images and on a fake drawn from the replay buffer:
    loss_D_X = (gan(D_X(real_X), real) + gan(D_X(buffer_X(fake_X)), fake)) / 2
               (+ lambda_gp * GP on interpolates of real_X and the buffer fake, for wgangp;
                + R1 on real_X and R2 on the buffer fake, when their weights are > 0)
`gan` is the objective `loss.gan_mode` names (lsgan, vanilla, hinge, wgangp; cyclegan.parts.losses.adversarial).

The official code sums the A and B terms where the seed averages them, so its logged `loss_G` is
twice ours at the same weights (the gradients differ by the same factor 2, which Adam absorbs).

Execution (none of it changes the math): on a GPU the replay buffers keep their images and draw
their random choices on the device (`DeviceReplayBuffer`), so a step never waits for the GPU;
on a CPU they are `ReplayBuffer`, whose draws keep the default run's numbers as they were.
`cuda_graphs=True` records the whole step, optimizer updates included, as one CUDA graph after a
few eager steps and replays it (cyclegan/runtime/cuda_graphs.py): one launch per step instead of some
two thousand; the optimizers are then made capturable with their rates in device tensors.
`compile_mode` is torch.compile's mode for `compile=True` (default, reduce-overhead: CUDA graphs
per network, max-autotune: tuned kernels after a long compilation).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
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
from cyclegan.methods.cyclegan_networks import CycleGANNetworks
from cyclegan.parts.losses.cyclegan import CycleGANLoss
from cyclegan.parts.networks.factory import count_parameters
from cyclegan.parts.networks.spec import NetworkSpec
from cyclegan.parts.replay_buffer import DeviceReplayBuffer, ReplayBuffer
from cyclegan.parts.schedule import LRMultiplier
from cyclegan.runtime.cuda_graphs import CapturedStep
from cyclegan.runtime.strategy import SingleProcess

log = logging.getLogger(__name__)


def run_batched(net: nn.Module, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``net`` on each input: one call on their concatenation when they share a shape.

    Instance norm works per sample, so the concatenated call gives the same numbers as separate
    calls with fewer kernel launches. Inputs of different sizes (preprocess=scale_width or none,
    which keep each image's shape) or channel counts are run one by one.
    """
    if all(x.shape[1:] == inputs[0].shape[1:] for x in inputs):
        return net(torch.cat(inputs)).split([x.shape[0] for x in inputs])
    return tuple(net(x) for x in inputs)


class GeneratorPair(nn.Module):
    """The training step's generator passes as one module call.

    Under DDP this pair is what gets wrapped: DDP averages gradients during the backward of each
    call of a wrapped module, and calling one wrapped module several times before one backward is
    fragile, so G_AB and G_BA are not wrapped one by one.

    Instance norm works per sample, so a generator applied to a concatenated batch gives the same
    numbers as separate calls; the six generator passes of the seed become three calls:
        G_AB([A, B])           -> fake_B, same_B
        G_BA([B, A, fake_B])   -> fake_A, same_A, recov_A
        G_AB(fake_A)           -> recov_B
    Batch norm normalises over the batch, so with it (`batched=False`) the six passes stay
    separate, as in the seed and the official code.
    """

    def __init__(self, G_AB: nn.Module, G_BA: nn.Module, batched: bool = True) -> None:
        super().__init__()
        self.G_AB, self.G_BA = G_AB, G_BA
        self.batched = batched

    def forward(
        self, real_A: torch.Tensor, real_B: torch.Tensor, identity: bool
    ) -> tuple[torch.Tensor | None, ...]:
        """(fake_B, same_B, fake_A, same_A, recov_A, recov_B); same_* are None without identity."""
        same_A = same_B = None
        if not self.batched:
            return self._separate(real_A, real_B, identity)
        if identity:
            fake_B, same_B = run_batched(self.G_AB, real_A, real_B)  # (B, C, H, W) each
            fake_A, same_A, recov_A = run_batched(self.G_BA, real_B, real_A, fake_B)
        else:
            fake_B = self.G_AB(real_A)
            fake_A, recov_A = run_batched(self.G_BA, real_B, fake_B)
        recov_B = self.G_AB(fake_A)
        return fake_B, same_B, fake_A, same_A, recov_A, recov_B

    def _separate(
        self, real_A: torch.Tensor, real_B: torch.Tensor, identity: bool
    ) -> tuple[torch.Tensor | None, ...]:
        fake_B, fake_A = self.G_AB(real_A), self.G_BA(real_B)
        same_B = self.G_AB(real_B) if identity else None
        same_A = self.G_BA(real_A) if identity else None
        return fake_B, same_B, fake_A, same_A, self.G_BA(fake_B), self.G_AB(fake_A)


class CycleGAN(TrainingMethod):
    """The CycleGAN training algorithm over its `CycleGANNetworks` (G_AB, G_BA, D_A, D_B)."""

    name = "cyclegan"
    loss_type = CycleGANLoss
    features = frozenset({"compile", "cuda_graphs"})
    directions = ("AB", "BA")
    loss_names = (
        "loss_G", "loss_GAN", "loss_cycle", "loss_identity", "loss_D_A", "loss_D_B", "loss_D",
    )  # fmt: skip
    progress_keys = ("loss_G", "loss_D", "loss_cycle")

    def __init__(
        self,
        *,
        networks: NetworkSpec,
        loss: CycleGANLoss,
        optimizer: OptimizerFactory,
        lr_rule: LRMultiplier,
        channels: tuple[int, int],
        execution: Execution,
        seed: int,
        buffer_size: int,
        device_buffers: bool | None = None,
    ) -> None:
        """`buffer_size`: the method's own setting (method.buffer_size: past fakes shown to each
        discriminator); the others come from the builder. `device_buffers` (tests): force the
        replay buffers' kind (None: on the device on GPUs)."""
        self.check_settings({"buffer_size": buffer_size}, loss, networks, channels, None)
        ex, device = execution, execution.device
        _check_graph_settings(ex.cuda_graphs, device, ex.precision, ex.strategy)
        container = CycleGANNetworks(networks, *channels)
        super().__init__(container, networks, channels, optimizer, lr_rule, execution)
        m, strategy = self.model, ex.strategy
        self.criterion = loss
        # Compiled wrappers share the modules' parameters, so state dicts keep their plain keys
        # and checkpoints stay interchangeable with eager runs.
        nets = (m.G_AB, m.G_BA, m.D_A, m.D_B)
        self.nets = (
            tuple(torch.compile(net, mode=ex.compile_mode) for net in nets) if ex.compile else nets
        )
        # The generator pair and each discriminator are what DDP wraps (wrapping copies rank 0's
        # weights to every rank). The generator update calls the plain discriminators: frozen
        # there, they only pass gradient to their input.
        pair = GeneratorPair(self.nets[0], self.nets[1], m.generators_per_image)
        self.generators = strategy.wrap(pair, device)
        self.joint_D = m.discriminators_per_image  # False with batch norm
        self.discriminators = (
            strategy.wrap(self.nets[2], device),
            strategy.wrap(self.nets[3], device),
        )
        self.opt_G = self.add_optimizer("G", m.generator_parameters())
        self.opt_D_A = self.add_optimizer("D_A", m.D_A.parameters())
        self.opt_D_B = self.add_optimizer("D_B", m.D_B.parameters())
        self.buffer_rng, self.buffer_A, self.buffer_B = _replay_buffers(
            buffer_size, device, device_buffers, strategy.seed(seed) + 1
        )
        self.graph: CapturedStep | None = None
        if ex.cuda_graphs:
            self.precision.cache_enabled = False  # autocast's weight cache cannot be replayed
            self._make_capturable()
            self.graph = CapturedStep(self.update, generators=(self.buffer_rng,))

    @staticmethod
    def check_settings(
        settings: Mapping[str, Any],
        loss: CycleGANLoss,
        networks: NetworkSpec,
        channels: tuple[int, int],
        img_size: int | None,
    ) -> None:
        """The replay buffer's size, and the identity loss across channel counts."""
        if settings["buffer_size"] < 0:
            raise ConfigError(f"method.buffer_size={settings['buffer_size']}: must be >= 0")
        if loss.lambda_id > 0 and channels[0] != channels[1]:
            raise ConfigError(
                f"loss.lambda_id={loss.lambda_id} needs dataset.channels_A == dataset.channels_B "
                f"(the identity loss feeds B images to G_AB), got {channels[0]} and "
                f"{channels[1]}; set loss.lambda_id=0"
            )

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """`update`, or under `cuda_graphs` the replay of its recorded kernels."""
        if self.graph is not None:
            return self.graph(batch)
        return self.update(batch)

    def start(self, steps_per_epoch: int) -> None:
        """Under `cuda_graphs` the rates live in device tensors (a graph reads them where they
        were at capture; the LR schedulers update them in place)."""
        super().start(steps_per_epoch)
        if self.graph is not None:
            self._make_capturable()

    def _make_capturable(self) -> None:
        """Optimizer step counts and rates on the device, as a replayed step needs them; again
        after a checkpoint is loaded (its param groups replace these settings)."""
        for optimizer in self.optimizers.values():
            for group in optimizer.param_groups:
                group["capturable"] = True
                if not isinstance(group["lr"], torch.Tensor):
                    group["lr"] = torch.tensor(group["lr"], dtype=torch.float32, device=self.device)

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One update of the generators (equations in the module docstring), then of D_A and D_B."""
        real_A, real_B = batch["A"], batch["B"]
        set_requires_grad([self.model.D_A, self.model.D_B], False)  # no D gradient from loss_G
        self.opt_G.zero_grad(set_to_none=True)
        with self.precision.autocast():
            # The three batched passes (GeneratorPair); one DDP call under trainer.strategy=ddp.
            passes = self.generators(real_A, real_B, self.criterion.lambda_id > 0)
            losses = self.generator_losses(real_A, real_B, *passes)
        self.precision.backward_and_step(losses["loss_G"], self.opt_G)
        set_requires_grad([self.model.D_A, self.model.D_B], True)

        fake_B, fake_A = passes[0].float(), passes[2].float()  # the buffers keep full precision
        D_A, D_B = self.discriminators  # DDP-wrapped under trainer.strategy=ddp
        fake_A, fake_B = self.buffer_A.push_and_pop(fake_A), self.buffer_B.push_and_pop(fake_B)
        loss_D_A = self.discriminator_step(D_A, self.opt_D_A, real_A, fake_A)
        loss_D_B = self.discriminator_step(D_B, self.opt_D_B, real_B, fake_B)
        self.scaler.update()
        losses = {k: v.detach() for k, v in losses.items()}
        return {
            **losses,
            "loss_D_A": loss_D_A,
            "loss_D_B": loss_D_B,
            "loss_D": (loss_D_A + loss_D_B) / 2,
        }

    def generator_losses(
        self,
        real_A: torch.Tensor,
        real_B: torch.Tensor,
        fake_B: torch.Tensor,
        same_B: torch.Tensor | None,
        fake_A: torch.Tensor,
        same_A: torch.Tensor | None,
        recov_A: torch.Tensor,
        recov_B: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """loss_G and its terms; loss_identity is 0 (and not computed) when lambda_id = 0."""
        crit = self.criterion
        D_A, D_B = self.nets[2], self.nets[3]  # compiled wrappers when trainer.compile=true
        if same_A is not None and same_B is not None:
            loss_identity = (crit.identity(same_A, real_A) + crit.identity(same_B, real_B)) / 2
        else:
            loss_identity = torch.zeros((), device=real_A.device)
        loss_GAN = (crit.generator_gan(D_B(fake_B)) + crit.generator_gan(D_A(fake_A))) / 2
        loss_cycle = (crit.cycle(recov_A, real_A) + crit.cycle(recov_B, real_B)) / 2
        return {
            "loss_G": crit.generator_total(loss_GAN, loss_cycle, loss_identity),
            "loss_GAN": loss_GAN,
            "loss_cycle": loss_cycle,
            "loss_identity": loss_identity,
        }

    def discriminator_step(
        self, D: nn.Module, optimizer: torch.optim.Optimizer, real: torch.Tensor, fake: torch.Tensor
    ) -> torch.Tensor:
        """One update of one discriminator; the same function serves D_A and D_B.

        Real and fake (and, for wgangp, their interpolates) go through D in one call when its
        norm is per image and they share a shape (the scores equal separate calls), which saves
        kernel launches and is one forward per backward under DDP; with batch norm, or a past
        fake from the buffer of another size than the real image (uncropped preprocess modes),
        they are scored separately.
        """
        optimizer.zero_grad(set_to_none=True)
        joint = self.joint_D and real.shape[1:] == fake.shape[1:]
        with self.precision.autocast():
            loss = self.criterion.discriminator_loss(D, real, fake, joint, self.steps_done)
        self.precision.backward_and_step(loss, optimizer)
        return loss.detach().float()

    def translators(self) -> dict[str, nn.Module]:
        return {"AB": self.model.G_AB, "BA": self.model.G_BA}

    def describe(self) -> str:
        G, D = count_parameters(self.model.G_AB), count_parameters(self.model.D_A)
        return f"G_AB {G / 1e6:.2f}M params, D_A {D / 1e6:.2f}M"

    def rank_state(self) -> dict[str, Any]:
        """Replay buffers and their RNG: they differ between DDP ranks."""
        return {
            "buffers": {"A": self.buffer_A.state_dict(), "B": self.buffer_B.state_dict()},
            "rng": {"buffer": self.buffer_rng.get_state()},
        }

    def load_rank_state(self, state: dict[str, Any]) -> None:
        """Buffers load across buffer kinds; the RNG state only on its own kind of device (a CPU
        generator's state does not fit a CUDA one): otherwise the draws go on from this run's seed,
        and the resume is exact in everything but the replay buffers' choices."""
        self.buffer_A.load_state_dict(state["buffers"]["A"])
        self.buffer_B.load_state_dict(state["buffers"]["B"])
        saved = state["rng"]["buffer"]
        if saved.numel() == self.buffer_rng.get_state().numel():
            self.buffer_rng.set_state(saved)
        else:
            log.warning(
                "the checkpoint's replay-buffer RNG was on another kind of device; the buffers "
                "draw from this run's seed from here on (not bit-exact)"
            )


def _replay_buffers(
    size: int, device: torch.device, on_device: bool | None, seed: int
) -> tuple[torch.Generator, ReplayBuffer | DeviceReplayBuffer, ReplayBuffer | DeviceReplayBuffer]:
    """The buffers' own RNG and the two buffers (A, B).

    Own RNG, so the draws do not depend on data loading or init; seeded per rank under DDP (rank
    0 keeps seed + 1), so the ranks' buffers draw independently. On a GPU (`on_device` None) or
    when asked, `DeviceReplayBuffer`s drawing from a generator on the device; on a CPU,
    `ReplayBuffer`s, whose draws keep the default run's numbers.
    """
    on_device = device.type != "cpu" if on_device is None else on_device
    rng = torch.Generator(device if on_device else "cpu").manual_seed(seed)
    if on_device:
        return rng, *(DeviceReplayBuffer(size, generator=rng, device=device) for _ in "AB")
    return rng, *(ReplayBuffer(size, generator=rng) for _ in "AB")


def _check_graph_settings(
    cuda_graphs: bool, device: torch.device, precision: str, strategy: SingleProcess
) -> None:
    """trainer.cuda_graphs needs CUDA, no loss scaling and (for now) one process."""
    if not cuda_graphs:
        return
    if device.type != "cuda":
        raise ConfigError(
            f"trainer.cuda_graphs=true needs a CUDA device (this run is on {device.type}); "
            "set trainer.cuda_graphs=false"
        )
    if precision == "16-mixed":
        raise ConfigError(
            "trainer.cuda_graphs=true cannot use trainer.precision=16-mixed (loss scaling reads "
            "the host every step); use bf16-mixed, auto or 32"
        )
    if strategy.world_size > 1:
        raise ConfigError(
            "trainer.cuda_graphs=true is not supported with DDP yet; set trainer.cuda_graphs=false"
        )
