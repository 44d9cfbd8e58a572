"""CapturedStep: the whole CycleGAN step as one CUDA graph gives the eager step's results."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from cyclegan.buffer import DeviceReplayBuffer
from cyclegan.config import TrainerConfig
from cyclegan.cuda_graphs import CapturedStep
from cyclegan.logging import NullLogger
from cyclegan.loss_window import LossWindow
from cyclegan.losses import CycleGANLoss
from cyclegan.models import CycleGAN
from cyclegan.schedule import LRMultiplier
from cyclegan.trainer import Trainer

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on CPU-only machines")
def test_without_cuda_the_error_names_the_setting() -> None:
    with pytest.raises(RuntimeError, match=r"trainer\.cuda_graphs=false"):
        CapturedStep(lambda: {})


def graph_ready_trainer(tmp_path) -> Trainer:
    """Capturable fused Adam with a tensor learning rate, device replay buffers (3 images)."""
    device = torch.device("cuda")
    torch.manual_seed(0)
    torch.cuda.manual_seed(0)
    trainer = Trainer(
        CycleGAN("resnet", n_residual_blocks=1, ngf=8, ndf=8),
        CycleGANLoss(),
        partial(
            torch.optim.Adam,
            lr=torch.tensor(2e-4, device=device),
            betas=(0.5, 0.999),
            fused=True,
            capturable=True,
        ),
        LRMultiplier("linear", 2, 1),
        TrainerConfig(progress=False, device="cuda", cudnn_benchmark=False),
        device,
        tmp_path,
        NullLogger(),
    )
    trainer.buffer_A = DeviceReplayBuffer(3, device=device)
    trainer.buffer_B = DeviceReplayBuffer(3, device=device)
    return trainer


def data(n: int, batch: int = 2) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(2)
    return [
        tuple((torch.rand(batch, 3, 32, 32, generator=g) * 2 - 1).cuda() for _ in "AB")
        for _ in range(n)
    ]


@cuda
def test_replays_give_the_eager_losses_and_weights(tmp_path) -> None:
    torch.backends.cudnn.deterministic = True
    batches = data(8) + data(1, batch=1)  # the last, smaller batch runs eagerly
    eager, captured = graph_ready_trainer(tmp_path), graph_ready_trainer(tmp_path)
    runs = {}
    for name, trainer in (("eager", eager), ("captured", captured)):
        torch.cuda.manual_seed(5)  # the buffers draw from the default generator
        step = partial(Trainer.training_step, trainer)
        if name == "captured":
            step = CapturedStep(step, warmup=2)
        window, per_step = LossWindow(), []
        for real_A, real_B in batches:
            losses = step(real_A, real_B)
            per_step.append(float(losses["loss_G"]))
            window.add(losses)
        runs[name] = per_step
    assert step.graph is not None and step.eager_calls == 3  # 2 warm-up + the small batch
    assert runs["captured"] == pytest.approx(runs["eager"], rel=1e-4)
    for p, q in zip(eager.model.parameters(), captured.model.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-5)
    assert torch.equal(eager.buffer_A.store, captured.buffer_A.store)  # same draws, same slots


@cuda
def test_a_learning_rate_tensor_updated_in_place_reaches_the_graph(tmp_path) -> None:
    trainer = graph_ready_trainer(tmp_path)
    step = CapturedStep(partial(Trainer.training_step, trainer), warmup=1)
    batches = data(3)
    for real_A, real_B in batches[:2]:
        step(real_A, real_B)
    before = [p.detach().clone() for p in trainer.model.G_AB.parameters()]
    for group in trainer.opt_G.param_groups:
        group["lr"].fill_(0.0)  # what an LR scheduler does with a tensor rate
    step(*batches[2])
    after = list(trainer.model.G_AB.parameters())
    assert all(torch.equal(b, a) for b, a in zip(before, after, strict=True))
