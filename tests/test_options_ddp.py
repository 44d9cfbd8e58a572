"""Options under DDP: penalties whose second-order gradients must be all-reduced, and the
generators' average, which must be the same on every rank.

Two gloo processes on the CPU each train on their own images. WGAN-GP: their interpolation draws
differ, so if the penalty's gradients reached D_A/D_B without DDP's all-reduce, the ranks' weights
would part after the step; they must stay identical, and the losses finite. R1/R2 (lazy) and the
average (trainer.ema_decay): three steps, and the trained and averaged weights identical on both.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from cyclegan.parts.schedule import LRMultiplier
from cyclegan.runtime.distributed import Place
from cyclegan.runtime.strategy import strategy_for

from .conftest import build_loss, cyclegan_method, network_spec
from .test_distributed import free_port
from .test_resume import assert_same_weights


def _worker(rank: int, world: int, port: int, out: Path) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    place = Place(rank=rank, local_rank=rank, world_size=world, master_port=port, source="torchrun")
    strategy = strategy_for(place)
    with strategy.session(torch.device("cpu")):
        torch.manual_seed(0)
        method = cyclegan_method(
            network_spec("paper", n_residual_blocks=1, ngf=4, ndf=4, spectral_norm=True),
            build_loss(gan_mode="wgangp", lambda_gp=10.0),
            partial(torch.optim.Adam, lr=1e-2, betas=(0.5, 0.999)),
            LRMultiplier("linear", 4, 2),
            strategy=strategy,
        )
        networks = method.model
        g = torch.Generator().manual_seed(10 + rank)  # each rank its own images
        batch = {k: torch.rand(2, 3, 32, 32, generator=g) * 2 - 1 for k in ("A", "B")}
        torch.manual_seed(100 + rank)  # and its own interpolation draws
        losses = method.training_step(batch)
        torch.save(
            {"weights": networks.state_dict(), "losses": {k: float(v) for k, v in losses.items()}},
            out / f"rank{rank}.pt",
        )


@pytest.mark.slow  # two processes: ~15 s on a quiet 2-core machine, more when it is shared
def test_wgangp_with_spectral_norm_keeps_ranks_in_sync(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(2, free_port(), tmp_path), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    weights = [
        {k: v for k, v in r["weights"].items() if not k.endswith(("_u", "_v"))} for r in ranks
    ]
    assert_same_weights(weights[0], weights[1])
    assert all(v == v and abs(v) < 1e6 for r in ranks for v in r["losses"].values())
    assert ranks[0]["losses"]["loss_D_A"] != ranks[1]["losses"]["loss_D_A"]  # different data


def _ema_worker(rank: int, world: int, port: int, out: Path) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    place = Place(rank=rank, local_rank=rank, world_size=world, master_port=port, source="torchrun")
    strategy = strategy_for(place)
    with strategy.session(torch.device("cpu")):
        torch.manual_seed(0)
        method = cyclegan_method(
            network_spec("resnet", n_residual_blocks=1, ngf=4, ndf=4),
            build_loss(lambda_r1=1.0, lambda_r2=0.5, reg_every=2),
            partial(torch.optim.Adam, lr=1e-2, betas=(0.5, 0.999)),
            LRMultiplier("linear", 4, 2),
            strategy=strategy,
        )
        method.average_generators(0.9, warmup=True)
        g = torch.Generator().manual_seed(10 + rank)  # each rank its own images
        for _ in range(3):
            batch = {k: torch.rand(2, 3, 32, 32, generator=g) * 2 - 1 for k in ("A", "B")}
            losses = method.training_step(batch)
            method.after_step()
        state = method.state_dict()
        torch.save(
            {"weights": state["model"], "ema": state["ema"], "loss_D_A": float(losses["loss_D_A"])},
            out / f"rank{rank}.pt",
        )


@pytest.mark.slow  # two processes
def test_r1_and_the_generator_average_stay_identical_across_ranks(tmp_path: Path) -> None:
    mp.spawn(_ema_worker, args=(2, free_port(), tmp_path), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert_same_weights(ranks[0]["weights"], ranks[1]["weights"])
    assert_same_weights(ranks[0]["ema"], ranks[1]["ema"])
    assert ranks[0]["loss_D_A"] != ranks[1]["loss_D_A"]  # different data on each rank
    key = "G_AB.model.1.weight"
    assert not torch.equal(ranks[0]["ema"][key], ranks[0]["weights"][key])  # an average
