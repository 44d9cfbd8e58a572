"""End to end, per preprocessing mode and channel setting: training steps on a folder of mixed
sizes and orientations, sample grids, checkpoint and exact resume, evaluation, translate; and the
config checks of the new dataset keys."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan.checkpoints.file import load_checkpoint
from cyclegan.errors import ConfigError
from cyclegan.inference.translate import translate
from cyclegan.training.builder import train

# (width, height): landscape, portrait, square. The discriminator's four stride-2 layers need
# samples of 32 px or more (its last instance norm needs more than one value).
SIZES = [(64, 48), (48, 64), (56, 56)]
MODES = {
    "resize_and_crop": ["dataset.load_size=52", "dataset.crop_size=32x48"],
    "crop": ["dataset.crop_size=32x40"],
    "scale_width": ["dataset.load_size=48", "dataset.crop_size=32"],  # 36x48, 64x48, 48x48
    "scale_width_and_crop": ["dataset.load_size=48", "dataset.crop_size=32x40"],
    "none": ["dataset.crop_size=32"],  # samples keep 48x64, 64x48, 56x56
}
CHANNELS = [(3, 3), (1, 1), (1, 3)]


def write_folder(root: Path) -> Path:
    """trainA/B and a paired testA/B of noise images of mixed shapes (RGB on disk)."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("test", 2)):
        for side in "AB":
            folder = root / f"{split}{side}"
            folder.mkdir(parents=True)
            for i in range(n):
                w, h = SIZES[i % len(SIZES)]
                pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def overrides(root: Path, mode: str, channels: tuple[int, int]) -> list[str]:
    return [
        "dataset=folder",
        f"dataset.root={root}",
        "dataset.paired_test=true",
        f"dataset.preprocess={mode}",
        *MODES[mode],
        f"dataset.channels_A={channels[0]}",
        f"dataset.channels_B={channels[1]}",
        f"loss.lambda_id={5.0 if channels[0] == channels[1] else 0.0}",
        "model.ngf=8",
        "model.ndf=8",
        "model.n_residual_blocks=1",
        "schedule.n_epochs=1",
        "schedule.decay_epoch=0",
        "trainer.steps_per_epoch=3",
        "trainer.checkpoint_unit=step",
        "trainer.checkpoint_every=1",
        "trainer.sample_every=3",
        "trainer.n_samples=2",
        "trainer.log_every=1",
        "trainer.progress=false",
        "trainer.device=cpu",
        "logger=file",
    ]


@pytest.mark.parametrize("channels", CHANNELS, ids=lambda c: f"{c[0]}to{c[1]}")
@pytest.mark.parametrize("mode", sorted(MODES))
def test_mode_and_channels_train_resume_and_translate(
    compose_cfg, tmp_path: Path, mode: str, channels: tuple[int, int]
) -> None:
    root = write_folder(tmp_path / "set")
    args = overrides(root, mode, channels)
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    train(compose_cfg(*args, f"paths.output_dir={full}"))
    step1 = full / "checkpoints" / "step_0000001.pt"
    train(compose_cfg(*args, f"paths.output_dir={resumed}", f"resume={step1}"))

    a, b = (load_checkpoint(p / "checkpoints" / "last.pt") for p in (full, resumed))
    assert a["step"] == b["step"] == 3
    for key, value in a["model"].items():  # exact resume, whatever the mode
        assert torch.equal(value, b["model"][key]), key
    assert a["model"]["G_AB.model.1.weight"].shape[1] == channels[0]
    summary = json.loads((full / "summary.json").read_text())
    assert np.isfinite(summary["eval/psnr_AB"]) and np.isfinite(summary["eval/ssim_BA"])
    (grid,) = (full / "samples").glob("*.png")
    crop = [int(x) for x in str(a["config"]["dataset"]["crop_size"]).split("x")] * 2
    with Image.open(grid) as image:  # rows real A, fake B, real B, fake A of 2 images, as RGB
        assert image.mode == "RGB"
        assert image.size == (2 + 2 * (crop[-1] + 2), 2 + 4 * (crop[0] + 2))

    report = translate(full / "checkpoints" / "last.pt", root / "testA", tmp_path / "out")
    assert len(report.translated) == 2 and not report.skipped
    with Image.open(tmp_path / "out" / "0.png") as out:
        assert out.mode == ("L" if channels[1] == 1 else "RGB")
        assert out.size == SIZES[0]  # translate keeps every image's size


def test_dataset_keys_are_checked_before_any_work(compose_cfg, tmp_path: Path) -> None:
    root = write_folder(tmp_path / "set")
    base = ["dataset=folder", f"dataset.root={root}", "trainer.device=cpu"]
    bad = {
        "dataset.crop_size=30": "multiples of 4",
        "dataset.crop_size=abc": "dataset.crop_size",
        "dataset.load_size=100": "load_size >= 256",
        "dataset.channels_B=2": "dataset.channels_B=2",
    }
    for override, message in bad.items():
        with pytest.raises(ConfigError, match=message):
            train(compose_cfg(*base, override))
    with pytest.raises(ConfigError, match=r"set loss\.lambda_id=0"):
        train(compose_cfg(*base, "dataset.channels_A=1"))
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_uncropped_mode_with_mixed_shapes_refuses_a_batch(compose_cfg, tmp_path: Path) -> None:
    root = write_folder(tmp_path / "set")
    cfg = compose_cfg(*overrides(root, "none", (3, 3)), "trainer.batch_size=2")
    with pytest.raises(ValueError, match=r"trainer\.batch_size=1"):
        train(cfg)


def test_old_img_size_keys_give_the_same_preprocessing(compose_cfg) -> None:
    from cyclegan.data.spec import preprocessing_from_keys
    from cyclegan.data.transforms import Preprocessing

    cfg = compose_cfg("dataset.img_size=64", "dataset.load_scale=1.12")
    d = cfg.dataset
    spec = preprocessing_from_keys(
        d.preprocess, d.load_size, d.crop_size, d.flip, d.img_size, d.load_scale
    )
    assert spec == Preprocessing.legacy(64, 1.12)
    wide = preprocessing_from_keys("resize_and_crop", None, "64x128", True, 64, 1.12)
    assert wide.load_size == int(128 * 1.12) and wide.crop_size == (64, 128)


def test_evaluate_scores_a_grayscale_domain_and_says_fid_repeats_it(
    compose_cfg, tmp_path: Path
) -> None:
    from cyclegan.evaluation.distribution import GRAYSCALE_NOTE
    from cyclegan.inference.evaluate import evaluate

    from .test_evaluation import TinyExtractor

    root = write_folder(tmp_path / "set")
    run = tmp_path / "gray"
    train(compose_cfg(*overrides(root, "resize_and_crop", (1, 3)), f"paths.output_dir={run}"))
    result = evaluate(run / "checkpoints" / "last.pt", extractor=TinyExtractor(), device="cpu")
    summary = json.loads((run / "summary.json").read_text())
    # The same one-channel test images and numbers as the run's own end-of-training evaluation.
    for key in ("eval/psnr_AB", "eval/ssim_BA"):
        assert result["metrics"][key] == pytest.approx(summary[key], rel=1e-6), key
    assert np.isfinite(result["metrics"]["eval/fid_BA"])  # 1-channel fakes of A, as RGB
    assert result["notes"] == [GRAYSCALE_NOTE]
    assert np.isfinite(result["baselines"]["baseline/identity/psnr_AB"])  # gray vs RGB truth


def test_crop_mode_counts_the_skipped_small_images_in_the_summary(
    compose_cfg, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = write_folder(tmp_path / "set")
    small = root / "trainA" / "small.png"
    Image.new("RGB", (20, 40)).save(small)
    args = [*overrides(root, "crop", (3, 3)), "trainer.steps_per_epoch=1", "trainer.sample_every=0"]
    with caplog.at_level("WARNING"):
        train(compose_cfg(*args))
    lines = [r.getMessage() for r in caplog.records if "small.png" in r.getMessage()]
    assert len(lines) == 1 and "40x20 (HxW) is smaller than the 32x40 crop" in lines[0]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["data/skipped_images"] == 1
