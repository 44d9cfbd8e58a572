"""The CUT/FastCUT training method: step order, one-sidedness, exact resume, DDP gradients."""

from __future__ import annotations

import copy
import json
import os
import socket
from functools import partial
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from omegaconf import OmegaConf

from cyclegan.checkpoints.file import load_checkpoint
from cyclegan.config.schema import group_defaults
from cyclegan.errors import ConfigError
from cyclegan.methods.base import Execution
from cyclegan.methods.cut import CUT
from cyclegan.parts.schedule import LRMultiplier
from cyclegan.runtime.distributed import Place
from cyclegan.runtime.strategy import strategy_for
from cyclegan.training.builder import train
from cyclegan.training.validation import validate

from .conftest import ROOT, TINY, build_loss, network_spec

SIZE = 32  # layer 16 of CUT's generator is then 8x8 = 64 positions


LOSS_KEYS = {"gan_mode", "lambda_gp", "lambda_GAN", "lambda_NCE", "nce_idt"}


def make_method(
    settings: dict | None = None,
    dtype: torch.dtype = torch.float32,
    strategy=None,
    seed: int = 0,
    variant: str = "cut",
) -> CUT:
    """A tiny CUT (width 4, 5 blocks) with CUT's method and loss YAML plus `settings` (keys of
    either group)."""
    torch.manual_seed(0)
    settings = settings or {}
    own = {**CUT_DEFAULTS, "num_patches": 16, "netF_nc": 16}
    own.update({k: v for k, v in settings.items() if k not in LOSS_KEYS})
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # built in `dtype`: DDP wraps (and broadcasts) what it sees
    try:
        method = CUT(
            networks=network_spec(variant, n_residual_blocks=5, ngf=4, ndf=4),
            loss=build_loss("cut", **{k: v for k, v in settings.items() if k in LOSS_KEYS}),
            optimizer=partial(torch.optim.Adam, lr=2e-4, betas=(0.5, 0.999)),
            lr_rule=LRMultiplier("linear", 4, 2),
            channels=(3, 3),
            execution=Execution.plain("cpu", **({"strategy": strategy} if strategy else {})),
            seed=seed,
            **own,
        )
    finally:
        torch.set_default_dtype(default)
    method.model.to(dtype)  # buffers made in float32 on purpose (CUT's blur filters)
    return method


CUT_DEFAULTS = {k: v for k, v in group_defaults("method", "cut").items() if k != "_target_"}
FASTCUT = {"lambda_NCE": 10.0, "nce_idt": False, "flip_equivariance": True}


def batch(n: int = 2, seed: int = 1, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.rand(n, 3, SIZE, SIZE, generator=g, dtype=dtype) * 2 - 1 for k in "AB"}


def test_step_updates_D_first_then_G_and_F_against_the_updated_D() -> None:
    method = make_method()
    before = copy.deepcopy(method.model)
    b = batch()
    losses = method.training_step(b)
    assert set(losses) == {
        "loss_G", "loss_G_GAN", "loss_NCE", "loss_NCE_Y", "loss_D", "loss_D_real", "loss_D_fake",
    }  # fmt: skip
    with torch.no_grad():
        fake_B = before.G(torch.cat([b["A"], b["B"]]))[:2]  # the fake of this step (old G)
        # D's loss was computed with the old D ...
        mse = torch.nn.functional.mse_loss  # LSGAN
        old = 0.5 * (
            mse(before.D(fake_B), torch.zeros(2, 1, 2, 2))
            + mse(before.D(b["B"]), torch.ones(2, 1, 2, 2))
        )
        # ... and G's adversarial term with the D updated in this step, as the reference does.
        new_gan = mse(method.model.D(fake_B), torch.ones(2, 1, 2, 2))
    torch.testing.assert_close(losses["loss_D"], old)
    torch.testing.assert_close(losses["loss_G_GAN"], new_gan)
    torch.testing.assert_close(
        losses["loss_G"], losses["loss_G_GAN"] + 0.5 * (losses["loss_NCE"] + losses["loss_NCE_Y"])
    )
    for name in ("G", "D", "F"):  # all three networks were trained
        changed = [
            not torch.equal(p, q)
            for p, q in zip(
                getattr(method.model, name).parameters(),
                getattr(before, name).parameters(),
                strict=True,
            )
        ]
        assert any(changed), name
    assert set(method.optimizers) == {"G", "D", "F"}
    assert method.translators() == {"AB": method.model.G}


def test_fastcut_flips_about_half_the_steps_from_the_patch_generator(monkeypatch) -> None:
    method = make_method(FASTCUT)
    seen: list[bool] = []
    forward = method.generator_pass.forward
    monkeypatch.setattr(
        method.generator_pass,
        "forward",
        lambda *a, **k: (seen.append(a[2]), forward(*a, **k))[1],
    )
    for _ in range(10):
        losses = method.training_step(batch())
        assert losses["loss_NCE_Y"] == 0
    assert 2 <= sum(seen) <= 8
    plain = make_method()
    assert plain.flip_equivariance is False


def test_without_nce_there_is_no_sampler_and_no_optimizer_for_it() -> None:
    method = make_method({"lambda_NCE": 0.0})
    losses = method.training_step(batch())
    assert method.model.F is None and set(method.optimizers) == {"G", "D"}
    assert losses["loss_NCE"] == 0 and losses["loss_G"] == losses["loss_G_GAN"]


def _state(method: CUT) -> dict:
    return copy.deepcopy({**method.state_dict(), **method.rank_state()})


def test_resume_is_bit_exact_with_the_patch_generator_in_the_state() -> None:
    method = make_method(FASTCUT)
    for i in range(2):
        method.training_step(batch(seed=i))
        method.after_step()
    saved = _state(method)
    assert "patch_rng" in saved
    expected = []
    for i in range(2, 5):
        expected.append(method.training_step(batch(seed=i)))
        method.after_step()
    resumed = make_method(FASTCUT, seed=123)  # another seed
    resumed.load_state_dict(saved)
    resumed.load_rank_state(saved)
    for i in range(2, 5):
        got = resumed.training_step(batch(seed=i))
        resumed.after_step()
        assert got == expected[i - 2]  # every loss, bit for bit
    for (k, a), b in zip(
        method.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), k


def test_a_cyclegan_checkpoint_does_not_resume_as_cut() -> None:
    method = make_method()
    state = _state(method)
    del state["patch_rng"]
    with pytest.raises(ConfigError, match="no CUT patch generator state"):
        method.load_state_dict(state)


# ------------------------------------------------------------------ DDP


def _grad_worker(rank: int, world: int, port: int, out: Path) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    place = Place(rank=rank, local_rank=rank, world_size=world, master_port=port, source="torchrun")
    strategy = strategy_for(place)
    with strategy.session(torch.device("cpu")):
        for preset in PRESETS:
            method = make_method(PRESETS[preset], torch.float64, strategy)
            full = batch(4, dtype=torch.float64)
            mine = {k: v[rank * 2 : rank * 2 + 2] for k, v in full.items()}
            losses = method.training_step(mine)
            sums = strategy.reduce_window(torch.stack([v.double() for v in losses.values()]))
            reduced = dict(zip(losses, sums.tolist(), strict=True))
            grads = {k: p.grad.clone() for k, p in method.model.named_parameters()}
            torch.save({"grads": grads, "losses": reduced}, out / f"{preset}_rank{rank}.pt")


PRESETS = {"cut": {}, "fastcut": FASTCUT}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # ~20 s on two busy cores, most of it starting the processes
def test_ddp_gradients_equal_one_process_over_the_global_batch(tmp_path) -> None:
    """2 gloo ranks x 2 images: the gradients of G, D and F after one step equal one process's
    over the 4 images (both ranks draw the same patch positions and flip, as one process does
    for its whole batch), for CUT and FastCUT. float64, so the comparison sees the parallelism,
    not rounding."""
    mp.spawn(_grad_worker, args=(2, free_port(), tmp_path), nprocs=2, join=True)
    for preset, settings in PRESETS.items():
        ranks = [torch.load(tmp_path / f"{preset}_rank{r}.pt", weights_only=True) for r in range(2)]
        single = make_method(settings, torch.float64)
        losses = single.training_step(batch(4, dtype=torch.float64))
        expected = {k: p.grad for k, p in single.model.named_parameters()}
        assert {k.split(".")[0] for k in expected} == {"G", "D", "F"}
        assert expected.keys() == ranks[0]["grads"].keys()
        for key, grad in expected.items():
            assert grad.abs().sum() > 0, key
            for r in ranks:
                torch.testing.assert_close(r["grads"][key], grad, atol=1e-9, rtol=1e-7, msg=key)
        for key, value in ranks[0]["losses"].items():  # float32 logs
            assert value == pytest.approx(float(losses[key]), rel=1e-6), (preset, key)


# ------------------------------------------------------------------ through train.py's builder

CUT_TINY = [
    *TINY,
    "model.n_residual_blocks=5",  # CUT's layer 16 is residual block 5
    "method.num_patches=16",  # layers 12 and 16 are 8x8 at 32 px
    "method.netF_nc=16",
    "trainer.checkpoint_unit=step",
    "trainer.checkpoint_every=1",
    "trainer.keep_last=10",
    "trainer.eval_every=3",
]


@pytest.mark.parametrize("name", ["cut", "fastcut"])
def test_method_option_trains_one_sided_and_evaluates_A_to_B(compose_cfg, tmp_path, name) -> None:
    cfg = compose_cfg(*CUT_TINY, f"method={name}")
    assert cfg.model.generator == "cut"  # the method picks CUT's anti-aliased networks
    train(cfg)
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())
    assert "eval/psnr_AB" in summary and "eval/psnr_BA" not in summary
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert {k.split(".")[0] for k in state["model"]} == {"G", "D", "F"}
    assert set(state["optimizers"]) == {"G", "D", "F"} and "patch_rng" in state
    assert state["step"] == 6
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    logged = {k for r in rows for k in r}
    assert {"train/loss_NCE", "train/loss_G_GAN", "train/loss_D"} <= logged
    nce_y = [r["train/loss_NCE_Y"] for r in rows if "train/loss_NCE_Y" in r]
    assert (min(nce_y) > 0) == (name == "cut")  # FastCUT has no identity NCE term (logged as 0)


def test_cut_resume_through_train_is_bit_exact(compose_cfg, tmp_path) -> None:
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    args = [*CUT_TINY, "method=fastcut", "trainer.eval_every=0", "trainer.sample_every=0"]
    train(compose_cfg(*args, f"paths.output_dir={full}"))
    step3 = full / "checkpoints" / "step_0000003.pt"
    train(compose_cfg(*args, f"paths.output_dir={resumed}", f"resume={step3}"))
    a = load_checkpoint(full / "checkpoints" / "last.pt")
    b = load_checkpoint(resumed / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == 6
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert torch.equal(a["patch_rng"], b["patch_rng"])


def test_model_cut_trains_cyclegan_too(compose_cfg, tmp_path) -> None:
    train(compose_cfg(*TINY, "model=cut", "trainer.sample_every=0"))
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert "G_AB.model.7.filt" in state["model"] and "G_BA.model.11.filt" in state["model"]


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["method.num_patches=0"], r"method.num_patches=0: use a positive integer"),
        (["loss.lambda_NCE=-1"], r"loss.lambda_NCE=-1: loss weights must be >= 0"),
        (["method.nce_layers=[0,4,40]"], r"nce_layers \[40\] outside the generator"),
        (["model=resnet", "method.nce_layers=[0,4,8,12,16]", "method.num_patches=16"], None),
        (["method.num_patches=100"], None),  # maps of 64 positions use all 64 (logged)
        (["trainer.compile=true"], "trainer.compile=true is not supported by method=cut"),
        (
            ["trainer.cuda_graphs=true", "trainer.device=cuda"],
            "trainer.cuda_graphs=true is not supported by method=cut",
        ),
        (
            ["model.generator=unet_128", "dataset.img_size=128"],
            r"model.generator=unet_128 has none in one sequence",
        ),
    ],
)
def test_bad_cut_settings_fail_in_one_line_before_any_work(
    compose_cfg, tmp_path, overrides, match
) -> None:
    cfg = compose_cfg(*CUT_TINY, "method=cut", *overrides)
    if match is None:  # valid (the resnet variant's layer 16 is its residual block 7, at 8x8)
        validate(cfg)
        return
    with pytest.raises(ConfigError, match=match) as err:
        train(cfg)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "data").exists() and not (tmp_path / "run").exists()  # nothing done


@pytest.mark.parametrize("method", ["cyclegan", "cut", "fastcut"])
def test_method_grid_cells_compose_with_the_cpu_recipe(compose_cfg, method) -> None:
    """Each cell of `python sweep.py method_grid` at the default CPU recipe: the same budget
    (2 epochs, 64 px), each method with its own networks, all valid."""
    cfg = compose_cfg("+experiment/sweeps=method_grid", f"method={method}")
    assert (cfg.schedule.n_epochs, cfg.schedule.decay_epoch, cfg.dataset.img_size) == (2, 1, 64)
    assert cfg.model.generator == ("resnet" if method == "cyclegan" else "cut")
    assert (cfg.model.ngf, cfg.model.n_residual_blocks) == (32, 6)
    validate(cfg)  # e.g. 256 patches fit CUT's 16x16 maps at 64 px
    grid = OmegaConf.load(ROOT / "experiments" / "sweeps" / "method_grid.yaml")
    assert grid.hydra.sweeper.params.method == "cyclegan,cut,fastcut"
