"""Checkpoints written before the method/loop split still resume exactly and still load in the
inference tools (tests/data/v1/README.md says how the files were made)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan.checkpoints.file import load_checkpoint
from cyclegan.inference.evaluate import evaluate
from cyclegan.inference.export import export
from cyclegan.inference.importers import Format, load_generator
from cyclegan.inference.translate import main as translate_main
from cyclegan.training.builder import train

from .conftest import ROOT, TINY

V1 = ROOT / "tests" / "data" / "v1"
# The overrides the v1 files were trained with (TINY, 4 epochs, no sample grids).
V1_RUN = [*TINY, "schedule.n_epochs=4", "trainer.sample_every=0", "logger=file"]


@pytest.fixture
def one_thread() -> Iterator[None]:
    """The v1 files were written with one intra-op thread; with more, the convolutions sum in
    another order and the weights differ in the last bits (not a format question)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_version_1_checkpoint_resumes_bit_exactly(
    compose_cfg, tmp_path: Path, one_thread: None
) -> None:
    state = load_checkpoint(V1 / "step_0000006.pt")
    assert state["format_version"] == 1 and state["step"] == 6 and "method" not in state["config"]
    run = tmp_path / "run"
    train(compose_cfg(*V1_RUN, f"resume={V1 / 'step_0000006.pt'}"))
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert last["step"] == 12
    expected = torch.load(V1 / "final_model.pt", weights_only=True)
    assert last["model"].keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(last["model"][key], value), key


def test_a_version_1_checkpoint_loads_in_translate_export_and_evaluate(
    compose_cfg, tmp_path: Path
) -> None:
    ckpt = tmp_path / "v1.pt"
    shutil.copyfile(V1 / "step_0000006.pt", ckpt)
    loaded = load_generator(ckpt, "AtoB")
    assert loaded.format is Format.checkpoint
    weights = load_checkpoint(ckpt)["model"]
    for key, value in loaded.generator.state_dict().items():
        assert torch.equal(value, weights[f"G_AB.{key}"]), key

    photos = tmp_path / "photos"
    photos.mkdir()
    pixels = np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(photos / "a.png")
    assert translate_main([f"ckpt={ckpt}", f"input={photos}", f"output={tmp_path / 'out'}"]) == 0
    assert Image.open(tmp_path / "out" / "a.png").size == (24, 20)

    written = export(ckpt, tmp_path / "exported")
    assert sorted(p.name for p in written) == ["G_AB.safetensors", "G_BA.safetensors"]

    # The file names the built-in dataset it was trained on (`dataset.synthetic` with its old
    # _target_); evaluate renders it again where the config says, here under tmp_path.
    state = load_checkpoint(ckpt)
    state["config"]["dataset"]["root"] = str(tmp_path / "data" / "synthetic")
    torch.save(state, ckpt)
    result = evaluate(ckpt, fid=False)
    assert (tmp_path / "data" / "synthetic" / "testA").is_dir()
    assert result["paired"] and result["n_test"] == {"A": 4, "B": 4}
    assert set(result["metrics"]) == {
        "eval/psnr_AB",
        "eval/ssim_AB",
        "eval/psnr_BA",
        "eval/ssim_BA",
    }
    assert all(np.isfinite(v) for v in result["metrics"].values())
