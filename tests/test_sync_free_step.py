"""A training step reads no tensor value back to the host, so on a GPU it never waits for it.

The CPU test runs the CycleGAN step under `forbid_host_reads` (tests/host_reads.py): with
today's `ReplayBuffer` it fails (its `.item()` draws), with `DeviceReplayBuffer` it passes. The
CUDA test runs the same step under `torch.cuda.set_sync_debug_mode("error")`.
"""

from __future__ import annotations

from functools import partial

import pytest
import torch

from cyclegan.buffer import DeviceReplayBuffer
from cyclegan.config import TrainerConfig
from cyclegan.logging import NullLogger
from cyclegan.loss_window import LossWindow
from cyclegan.losses import CycleGANLoss
from cyclegan.models import CycleGAN
from cyclegan.schedule import LRMultiplier
from cyclegan.trainer import Trainer
from tests.host_reads import HostReadError, forbid_host_reads

BATCH, SIZE = 2, 32


def tiny_trainer(device: torch.device, tmp_path, device_buffers: bool) -> Trainer:
    torch.manual_seed(0)
    trainer = Trainer(
        CycleGAN("resnet", n_residual_blocks=1, ngf=8, ndf=8),
        CycleGANLoss(),
        # Fused Adam keeps its step counts on the device; the per-parameter and foreach
        # implementations read them back (`_get_value(step)`) to compute the bias correction.
        partial(torch.optim.Adam, lr=2e-4, betas=(0.5, 0.999), fused=True),
        LRMultiplier("linear", 2, 1),
        TrainerConfig(progress=False, buffer_size=3, device=device.type),
        device,
        tmp_path,
        NullLogger(),
    )
    if device_buffers:
        rng = torch.Generator(device=device).manual_seed(1)
        trainer.buffer_A = DeviceReplayBuffer(3, generator=rng, device=device)
        trainer.buffer_B = DeviceReplayBuffer(3, generator=rng, device=device)
    return trainer


def batches(device: torch.device, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(2)
    return [
        tuple((torch.rand(BATCH, 3, SIZE, SIZE, generator=g) * 2 - 1).to(device) for _ in "AB")
        for _ in range(n)
    ]


def test_step_with_device_buffers_reads_nothing_back(tmp_path) -> None:
    """Four steps (the buffers of 3 fill in two, then swap), losses summed in a LossWindow."""
    cpu = torch.device("cpu")
    trainer, window = tiny_trainer(cpu, tmp_path, device_buffers=True), LossWindow()
    data = batches(cpu, 4)
    with forbid_host_reads():
        for real_A, real_B in data:
            window.add(trainer.training_step(real_A, real_B))
    assert len(trainer.buffer_A) == 3
    means = window.pop_means()
    assert window.first_nonfinite() is None
    assert set(means) >= {"loss_G", "loss_D_A", "loss_D_B", "loss_cycle"}
    assert all(0 < v < 100 for v in means.values())

    # The guard changed nothing: the same steps unguarded give the same losses.
    again, window2 = tiny_trainer(cpu, tmp_path, device_buffers=True), LossWindow()
    for real_A, real_B in data:
        window2.add(again.training_step(real_A, real_B))
    assert window2.pop_means() == means


def test_todays_replay_buffer_is_a_host_read(tmp_path) -> None:
    """The guard catches the real thing: ReplayBuffer's draws once its 3 slots are full."""
    cpu = torch.device("cpu")
    trainer = tiny_trainer(cpu, tmp_path, device_buffers=False)
    data = batches(cpu, 3)
    with forbid_host_reads(), pytest.raises(HostReadError, match="_local_scalar_dense"):
        for real_A, real_B in data:
            trainer.training_step(real_A, real_B)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (set_sync_debug_mode)")
def test_cuda_step_never_synchronises(tmp_path) -> None:
    cuda = torch.device("cuda")
    trainer, window = tiny_trainer(cuda, tmp_path, device_buffers=True), LossWindow()
    data = batches(cuda, 6)
    for real_A, real_B in data[:2]:  # warm-up: cuDNN autotuning and first allocations may sync
        window.add(trainer.training_step(real_A, real_B))
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for real_A, real_B in data[2:]:
            window.add(trainer.training_step(real_A, real_B))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert window.count == 6 and window.first_nonfinite() is None
