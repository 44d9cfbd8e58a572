"""trainer.cuda_graphs: the whole CycleGAN step as one CUDA graph gives the eager step's results."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from cyclegan.errors import ConfigError
from cyclegan.methods.cyclegan import CycleGAN as CycleGANMethod
from cyclegan.parts.schedule import LRMultiplier
from cyclegan.runtime.cuda_graphs import CapturedStep
from cyclegan.runtime.strategy import SingleProcess

from .conftest import build_loss, cyclegan_method, network_spec

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def method(device: torch.device, cuda_graphs: bool, **options) -> CycleGANMethod:
    torch.manual_seed(0)
    return cyclegan_method(
        network_spec("resnet", n_residual_blocks=1, ngf=8, ndf=8),
        build_loss(),
        partial(torch.optim.Adam, lr=2e-4, betas=(0.5, 0.999), fused=True),
        LRMultiplier("linear", 4, 2),
        device,
        buffer_size=3,
        cuda_graphs=cuda_graphs,
        **options,
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on CPU-only machines")
def test_without_cuda_the_errors_name_the_setting() -> None:
    with pytest.raises(RuntimeError, match=r"trainer\.cuda_graphs=false"):
        CapturedStep(lambda batch: {})
    with pytest.raises(ConfigError, match=r"needs a CUDA device .*trainer\.cuda_graphs=false"):
        method(torch.device("cpu"), cuda_graphs=True)


def test_settings_a_graph_cannot_replay_are_refused_before_any_work() -> None:
    device = torch.device("cuda")  # checked before anything is moved to it
    with pytest.raises(ConfigError, match=r"cannot use trainer\.precision=16-mixed"):
        method(device, cuda_graphs=True, precision="16-mixed")

    class TwoRanks(SingleProcess):
        world_size = 2  # type: ignore[assignment]

    with pytest.raises(ConfigError, match="not supported with DDP"):
        method(device, cuda_graphs=True, strategy=TwoRanks())


def data(n: int, batch: int = 2) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(2)
    return [
        {d: (torch.rand(batch, 3, 32, 32, generator=g) * 2 - 1).cuda() for d in "AB"}
        for _ in range(n)
    ]


@cuda
@pytest.mark.parametrize("precision", ["32", "bf16-mixed"])
def test_replays_give_the_eager_losses_weights_and_buffers(precision: str) -> None:
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    batches = data(8) + data(1, batch=1)  # the last, smaller batch runs eagerly
    runs = {}
    for graphs in (False, True):
        m = method(torch.device("cuda"), graphs, precision=precision)
        m.start(steps_per_epoch=4)  # the LR decays within the run: the graph must follow it
        per_step = []
        for batch in batches:
            per_step.append(float(m.training_step(batch)["loss_G"]))
            m.after_step()
        runs[graphs] = (per_step, m)
    (eager, e), (captured, c) = runs[False], runs[True]
    assert c.graph is not None and c.graph.eager_calls == c.graph.warmup + 1
    assert captured == pytest.approx(eager, rel=1e-3 if precision == "32" else 2e-2)
    for p, q in zip(e.model.parameters(), c.model.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-4 if precision == "32" else 1e-2)
    assert torch.equal(e.buffer_A.store, c.buffer_A.store)  # same draws, same slots


@cuda
def test_a_learning_rate_of_zero_set_in_place_freezes_the_replayed_step() -> None:
    m = method(torch.device("cuda"), cuda_graphs=True)
    m.start(steps_per_epoch=4)
    batches = data(5)
    for batch in batches[:4]:  # warm-up and capture
        m.training_step(batch)
    before = [p.detach().clone() for p in m.model.G_AB.parameters()]
    for group in m.opt_G.param_groups:
        group["lr"].fill_(0.0)  # what the LR scheduler does with a tensor rate
    m.training_step(batches[4])
    assert all(torch.equal(b, a) for b, a in zip(before, m.model.G_AB.parameters(), strict=True))


@pytest.mark.parametrize(
    "overrides", [["trainer.device=cpu"], ["trainer.precision=16-mixed", "trainer.device=cuda"]]
)
def test_config_refuses_cuda_graphs_where_they_cannot_run(compose_cfg, overrides) -> None:
    from cyclegan.training.validation import validate
    from tests.conftest import TINY

    with pytest.raises(ConfigError, match=r"set trainer\.cuda_graphs=false"):
        validate(compose_cfg(*TINY, "trainer.cuda_graphs=true", *overrides))
