"""Trainer keys reach what they name: one small run observed from the outside (the loader's
batches, the log's rows, the evaluations, the sample grid, the progress bar), and the execution
keys the builder hands every method (activation checkpointing, compile mode, cuDNN's benchmark)."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from cyclegan.methods.cyclegan import CycleGAN
from cyclegan.runtime.activation_checkpointing import is_checkpointed
from cyclegan.runtime.device import configure_backends
from cyclegan.runtime.strategy import SingleProcess
from cyclegan.training.builder import build_method, train

from .conftest import TINY


@pytest.fixture(scope="module")
def observed_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A 6-step run with non-default cadence keys; what the step saw and what the run wrote."""
    from cyclegan.config.compose import compose_config

    tmp = tmp_path_factory.mktemp("trainer_options")
    seen: dict = {"shapes": [], "devices": set()}
    step = CycleGAN.training_step

    def spy(self, batch):
        seen["shapes"].append(tuple(batch["A"].shape))
        seen["devices"].add(batch["A"].device.type)
        return step(self, batch)

    from cyclegan.training import builder

    make_loader = builder.build_train_loader

    def loader_spy(*args, **kwargs):
        loader = make_loader(*args, **kwargs)
        seen["workers"] = loader.num_workers
        return loader

    mp = pytest.MonkeyPatch()
    mp.setattr(CycleGAN, "training_step", spy)
    mp.setattr(builder, "build_train_loader", loader_spy)
    cfg = compose_config(
        [
            *TINY, f"paths.data_dir={tmp / 'data'}", f"paths.output_dir={tmp / 'run'}",
            "trainer.batch_size=2", "trainer.log_every=3", "trainer.eval_every=1",
            "trainer.n_samples=3", "trainer.sample_every=6",
            "trainer.device=cpu", "trainer.num_workers=1", "dataset.synthetic.n_test=4",
        ]
    )  # fmt: skip
    try:
        train(cfg)
    finally:
        mp.undo()
    rows = [json.loads(x) for x in (tmp / "run" / "metrics.jsonl").read_text().splitlines()]
    return {**seen, "rows": rows, "run": tmp / "run"}


def test_device_reaches_the_batches(observed_run: dict) -> None:
    assert observed_run["devices"] == {"cpu"}


def test_num_workers_reaches_the_loader(observed_run: dict) -> None:
    assert observed_run["workers"] == 1


def test_batch_size_reaches_the_loader(observed_run: dict) -> None:
    assert observed_run["shapes"] == [(2, 3, 32, 32)] * 6


def test_log_every_sets_the_rows(observed_run: dict) -> None:
    steps = [r["step"] for r in observed_run["rows"] if "train/loss_G" in r]
    assert steps == [3, 6]  # one row per 3 steps, each the mean of its window


def test_eval_every_sets_the_evaluations(observed_run: dict) -> None:
    steps = [r["step"] for r in observed_run["rows"] if "eval/psnr_AB" in r]
    assert steps == [3, 6]  # after epoch 1 (3 steps), then the final evaluation


def test_n_samples_sets_the_grid_width(observed_run: dict) -> None:
    (grid,) = sorted((observed_run["run"] / "samples").glob("*.png"))
    with Image.open(grid) as image:  # 3 images a row, 32 px + 2 px padding each
        assert image.size[0] == 2 + 3 * 34


@pytest.mark.parametrize("progress", [True, False])
def test_progress_turns_the_bar_on_and_off(compose_cfg, monkeypatch, progress: bool) -> None:
    import tqdm.auto

    disabled = []
    real = tqdm.auto.tqdm

    def spy(*args, **kwargs):
        disabled.append(kwargs["disable"])
        return real(*args, **kwargs)

    monkeypatch.setattr(tqdm.auto, "tqdm", spy)
    train(compose_cfg(*TINY, f"trainer.progress={progress}", "trainer.steps_per_epoch=1"))
    assert disabled == [not progress]


@pytest.mark.parametrize("method", ["cyclegan", "cut"])
def test_activation_checkpointing_reaches_every_methods_blocks(compose_cfg, method: str) -> None:
    cfg = compose_cfg(*TINY, f"method={method}", "trainer.activation_checkpointing=true")
    built = build_method(cfg, torch.device("cpu"), SingleProcess())
    blocks = [m for m in built.model.modules() if type(m).__name__ == "ResidualBlock"]
    assert blocks and all(is_checkpointed(b) for b in blocks)


def test_compile_mode_reaches_torch_compile(compose_cfg, monkeypatch) -> None:
    modes = []
    monkeypatch.setattr(torch, "compile", lambda net, mode: modes.append(mode) or net)
    cfg = compose_cfg(*TINY, "trainer.compile=true", "trainer.compile_mode=max-autotune")
    build_method(cfg, torch.device("cpu"), SingleProcess())
    assert modes == ["max-autotune"] * 4  # G_AB, G_BA, D_A, D_B


def test_cudnn_benchmark_is_set_on_cuda_only(monkeypatch) -> None:
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    configure_backends(torch.device("cuda"), cudnn_benchmark=False)
    assert torch.backends.cudnn.benchmark is False
    configure_backends(torch.device("cpu"), cudnn_benchmark=True)
    assert torch.backends.cudnn.benchmark is False  # CPU runs leave the flag alone
