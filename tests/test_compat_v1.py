"""Checkpoints of format 1 still resume and still load in the inference tools: files written before
the method/loop split (tests/data/v1) and files written by main just before methods owned their
settings and checkpoints recorded what trained them (tests/data/v1-methods, CycleGAN and CUT).
The READMEs there say how each file was made.

The files were written on one CPU. Another CPU may sum a convolution in another order, so the
weights after resuming are compared to the stored ones with a tolerance; bit-exactness is checked
where both sides are computed in this test (a second resume from this run's own checkpoint).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan.checkpoints.file import CheckpointError, load_checkpoint
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


def assert_close_weights(actual: dict, expected: dict) -> None:
    """Equal up to float rounding of another CPU (bit for bit on the machine that wrote them)."""
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        torch.testing.assert_close(actual[key], value, atol=1e-6, rtol=1e-4, msg=key)


def resume_twice(compose_cfg, tmp_path: Path, overrides: list[str], ckpt: Path, last_step: int):
    """Resume `ckpt` to the end, then resume this run's own checkpoint one step before the end:
    the two must end bit for bit alike (both computed here). Returns the first run's last.pt."""
    first = tmp_path / "run"
    train(compose_cfg(*overrides, f"resume={ckpt}", "trainer.checkpoint_unit=step",
                      "trainer.keep_last=20", f"paths.output_dir={first}"))  # fmt: skip
    own = first / "checkpoints" / f"step_{last_step - 1:07d}.pt"
    second = tmp_path / "again"
    train(compose_cfg(*overrides, f"resume={own}", f"paths.output_dir={second}"))
    a = load_checkpoint(first / "checkpoints" / "last.pt")
    b = load_checkpoint(second / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == last_step
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    return a


def test_a_version_1_checkpoint_resumes_exactly(
    compose_cfg, tmp_path: Path, one_thread: None
) -> None:
    state = load_checkpoint(V1 / "step_0000006.pt")
    assert state["format_version"] == 1 and state["step"] == 6 and "method" not in state["config"]
    last = resume_twice(compose_cfg, tmp_path, V1_RUN, V1 / "step_0000006.pt", 12)
    assert last["method"]["name"] == "cyclegan"  # the record written from here on
    assert_close_weights(last["model"], torch.load(V1 / "final_model.pt", weights_only=True))


V1_METHODS = ROOT / "tests" / "data" / "v1-methods"
METHOD_RUN = [*TINY, "trainer.sample_every=0", "logger=file"]
# The CUT file's own settings (num_patches 64 fit 32 px maps then; a small F keeps it small).
METHOD_OVERRIDES = {
    "cyclegan": [],
    "cut": ["method=cut", "method.num_patches=64", "method.netF_nc=16"],
}


@pytest.mark.parametrize("method", sorted(METHOD_OVERRIDES))
def test_checkpoints_of_the_previous_layout_resume_and_translate(
    compose_cfg, tmp_path: Path, one_thread: None, method: str
) -> None:
    ckpt = V1_METHODS / f"{method}_step_0000003.pt"
    state = load_checkpoint(ckpt)
    assert state["format_version"] == 1 and "method" not in state  # no record: read the config
    overrides = [*METHOD_RUN, *METHOD_OVERRIDES[method]]
    last = resume_twice(compose_cfg, tmp_path, overrides, ckpt, 6)
    assert last["method"]["name"] == method and last["format_version"] == 2
    expected = torch.load(V1_METHODS / f"{method}_final_model.pt", weights_only=True)
    assert_close_weights(last["model"], expected)

    loaded = load_generator(ckpt, "AtoB")
    prefix = "G_AB." if method == "cyclegan" else "G."
    for key, value in loaded.generator.state_dict().items():
        assert torch.equal(value, state["model"][prefix + key]), key
    if method == "cut":
        with pytest.raises(CheckpointError, match="one-sided CUT model"):
            load_generator(ckpt, "BtoA")


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
