"""CUT models in the inference tools: translate, export and evaluate work A->B, and B->A is refused
in one line (CUT is one-sided); the reference's `latest_net_G.pth` loads through the same importer."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan.checkpoints.file import CheckpointError, load_checkpoint
from cyclegan.inference import translate
from cyclegan.inference.evaluate import evaluate
from cyclegan.inference.evaluate import main as evaluate_main
from cyclegan.inference.export import export
from cyclegan.inference.importers import Direction, Format, load_generator
from cyclegan.parts.networks.cut_resnet import CUTResnetGenerator
from cyclegan.training.builder import train

from .test_cut_method import CUT_TINY

DATA = Path(__file__).parent / "data" / "cut"


@pytest.fixture(scope="module")
def cut_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6-step CUT run on the built-in dataset (32 px), its checkpoint and paired test split."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from cyclegan.config.schema import register_configs

    from .conftest import CONF

    root = tmp_path_factory.mktemp("cut_run")
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            config_name="config",
            overrides=[
                *CUT_TINY,
                "method=cut",
                "trainer.eval_every=0",
                "trainer.sample_every=0",
                f"paths.data_dir={root / 'data'}",
                f"paths.output_dir={root / 'run'}",
            ],
        )
    GlobalHydra.instance().clear()
    train(cfg)
    return root / "run"


@pytest.fixture
def reference_file(tmp_path: Path) -> Path:
    """CUT's own CPU-trained file layout: DataParallel's `module.` prefix on every key."""
    sd = torch.load(DATA / "cut_G_resnet9_ngf16.pth", weights_only=True)
    path = tmp_path / "latest_net_G.pth"
    torch.save(OrderedDict((f"module.{k}", v) for k, v in sd.items()), path)
    return path


def test_reference_file_loads_as_cut_and_reproduces_its_outputs(reference_file) -> None:
    io = torch.load(DATA / "io_cut.pt", weights_only=True)["cut_G"]
    loaded = load_generator(reference_file)
    assert loaded.format is Format.cut and loaded.direction is Direction.AtoB
    assert isinstance(loaded.generator, CUTResnetGenerator)
    assert (loaded.spec.variant, loaded.spec.ngf, loaded.spec.n_residual_blocks) == ("cut", 16, 9)
    with torch.no_grad():
        torch.testing.assert_close(
            loaded.generator(io["input"]), io["output_eval"], atol=1e-5, rtol=1e-5
        )
    with pytest.raises(
        CheckpointError, match="one-sided CUT model: it translates A->B only"
    ) as err:
        load_generator(reference_file, "BtoA")
    assert "\n" not in str(err.value)


def test_our_cut_checkpoint_translates_A_to_B_only(cut_run: Path, tmp_path: Path, capsys) -> None:
    ckpt = cut_run / "checkpoints" / "last.pt"
    loaded = load_generator(ckpt)
    state = load_checkpoint(ckpt)
    weights = {k[2:]: v for k, v in state["model"].items() if k.startswith("G.")}
    for key, value in loaded.generator.state_dict().items():
        assert torch.equal(value, weights[key]), key
    photos = tmp_path / "in"
    photos.mkdir()
    Image.fromarray(np.full((20, 24, 3), 120, np.uint8)).save(photos / "x.png")
    assert (
        translate.main(
            [f"ckpt={ckpt}", f"input={photos}", f"output={tmp_path / 'out'}", "progress=false"]
        )
        == 0
    )
    assert Image.open(tmp_path / "out" / "x.png").size == (24, 20)
    status = translate.main(
        [f"ckpt={ckpt}", f"input={photos}", f"output={tmp_path / 'ba'}", "direction=BtoA"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and any("one-sided CUT model" in line for line in err)
    assert not (tmp_path / "ba").exists()  # refused before anything was written


def test_export_of_a_cut_checkpoint_writes_its_one_generator(cut_run: Path, tmp_path: Path) -> None:
    ckpt = cut_run / "checkpoints" / "last.pt"
    paths = export(ckpt, tmp_path / "exported")  # default: both directions -> the one it has
    assert [p.name for p in paths] == ["G_AB.safetensors"]
    again = load_generator(paths[0])
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(
            again.generator(x), load_generator(ckpt).generator(x), atol=0, rtol=0
        )
    with pytest.raises(CheckpointError, match="one-sided"):
        export(ckpt, tmp_path / "ba", directions=["BtoA"])


def test_evaluate_a_cut_checkpoint_scores_A_to_B(cut_run: Path, tmp_path: Path, capsys) -> None:
    ckpt = cut_run / "checkpoints" / "last.pt"
    result = evaluate(ckpt, fid=False, device="cpu")
    assert set(result["metrics"]) == {"eval/psnr_AB", "eval/ssim_AB"}
    assert evaluate_main([f"ckpt={ckpt}", "fid=false", "device=cpu"]) == 0
    out = capsys.readouterr().out
    assert "A->B PSNR" in out and "B->A" not in out
    assert evaluate_main([f"ckpt={ckpt}", "fid=false", "direction=BtoA"]) == 2
    assert "one-sided" in capsys.readouterr().err
