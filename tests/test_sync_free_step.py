"""The CycleGAN method's training step reads no tensor value back to the host, so on a GPU it
never waits for it.

On the CPU the step runs under `forbid_host_reads` (tests/host_reads.py), with the replay buffers
on the device (`device_buffers=True`, what a GPU run gets by default): it passes. With the CPU's
`ReplayBuffer` it fails: its `.item()` reads of CPU-generator draws would not stall a GPU, but they
are Python decisions that a CUDA graph would freeze, and on a CPU the guard cannot tell a host
tensor from a device one. On CUDA the step runs under `torch.cuda.set_sync_debug_mode("error")`,
eagerly and as a replayed CUDA graph.
"""

from __future__ import annotations

from functools import partial

import pytest
import torch

from cyclegan.methods.cyclegan import CycleGAN as CycleGANMethod
from cyclegan.parts.replay_buffer import DeviceReplayBuffer
from cyclegan.parts.schedule import LRMultiplier
from cyclegan.training.loss_window import LossWindow
from tests.host_reads import HostReadError, forbid_host_reads

from .conftest import build_loss, cyclegan_method, network_spec

BATCH, SIZE = 2, 32


def tiny_method(device: torch.device, device_buffers: bool, **options) -> CycleGANMethod:
    torch.manual_seed(0)
    return cyclegan_method(
        network_spec("resnet", n_residual_blocks=1, ngf=8, ndf=8),
        build_loss(),
        # Fused Adam keeps its step counts on the device; the per-parameter and foreach
        # implementations read them back (`_get_value(step)`) for the bias correction.
        partial(torch.optim.Adam, lr=2e-4, betas=(0.5, 0.999), fused=True),
        LRMultiplier("linear", 2, 1),
        device,
        buffer_size=3,
        device_buffers=device_buffers,
        **options,
    )


def batches(device: torch.device, n: int) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(2)
    return [
        {d: (torch.rand(BATCH, 3, SIZE, SIZE, generator=g) * 2 - 1).to(device) for d in "AB"}
        for _ in range(n)
    ]


def run(method: CycleGANMethod, data: list[dict[str, torch.Tensor]]) -> LossWindow:
    window = LossWindow()
    for batch in data:
        window.add({**method.training_step(batch), "lr": method.learning_rate()})
        method.after_step()
    return window


def test_step_with_device_buffers_reads_nothing_back() -> None:
    """Four steps (the buffers of 3 fill in two, then swap), losses summed in a LossWindow, LR
    schedules stepped: what the loop does per step."""
    cpu = torch.device("cpu")
    method, data = tiny_method(cpu, device_buffers=True), batches(cpu, 4)
    method.start(steps_per_epoch=4)
    assert isinstance(method.buffer_A, DeviceReplayBuffer)
    with forbid_host_reads():
        window = run(method, data)
    assert len(method.buffer_A) == 3
    assert window.first_nonfinite() is None
    means = window.pop_means()
    assert set(means) >= {"loss_G", "loss_D_A", "loss_D_B", "loss_cycle", "lr"}
    assert all(0 < v < 100 for v in means.values())

    again = tiny_method(cpu, device_buffers=True)  # unguarded: the same numbers
    again.start(steps_per_epoch=4)
    assert run(again, data).pop_means() == means


def test_cpu_replay_buffer_is_a_host_read() -> None:
    """The guard sees real reads: ReplayBuffer's draws once its 3 slots are full."""
    cpu = torch.device("cpu")
    method, data = tiny_method(cpu, device_buffers=False), batches(cpu, 3)
    with forbid_host_reads(), pytest.raises(HostReadError, match="_local_scalar_dense"):
        run(method, data)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (set_sync_debug_mode)")
@pytest.mark.parametrize("graphs", [False, True])
def test_cuda_step_never_synchronises(graphs: bool) -> None:
    cuda = torch.device("cuda")
    method = tiny_method(cuda, device_buffers=None, cuda_graphs=graphs)
    method.start(steps_per_epoch=8)
    data = batches(cuda, 8)
    run(method, data[:4])  # warm-up (and capture): cuDNN autotuning and allocations may sync
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        window = run(method, data[4:])
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert window.count == 4 and window.first_nonfinite() is None


def test_device_buffers_resume_exactly(tmp_path) -> None:
    """The method's state and rank state (device buffers, their generator) through a checkpoint
    file: the resumed method continues with the same losses as the one that never stopped."""
    cpu = torch.device("cpu")
    data = batches(cpu, 6)
    straight = tiny_method(cpu, device_buffers=True)
    straight.start(steps_per_epoch=6)
    run(straight, data[:4])  # buffers full and swapping
    torch.save(
        {"state": straight.state_dict(), "rank": straight.rank_state()}, tmp_path / "ckpt.pt"
    )
    expected = run(straight, data[4:]).pop_means()

    saved = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    resumed = tiny_method(cpu, device_buffers=True)
    resumed.load_state_dict(saved["state"])
    resumed.load_rank_state(saved["rank"])
    resumed.start(steps_per_epoch=6)
    assert run(resumed, data[4:]).pop_means() == expected
