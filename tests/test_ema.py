"""The generators' exponential moving average (trainer.ema_decay, trainer.ema_warmup;
cyclegan/parts/ema.py): its update, that it leaves training alone, that evaluation, sample grids,
best.pt, translate, export and evaluate use it (and the raw weights on request), and exact resume.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image
from torch import nn

from cyclegan.checkpoints.file import load_checkpoint
from cyclegan.config.compose import compose_config
from cyclegan.data.builders import prepare_dataset
from cyclegan.evaluation.samples import sample_rows, save_sample_grid
from cyclegan.inference import evaluate as evaluate_cli
from cyclegan.inference import export as export_cli
from cyclegan.inference import translate as translate_cli
from cyclegan.inference.importers import Direction, load_generator
from cyclegan.parts.ema import GeneratorEMA
from cyclegan.runtime.strategy import SingleProcess
from cyclegan.training.builder import build_evaluation, build_method, train

from .conftest import TINY
from .test_evaluation import TinyExtractor
from .test_resume import EVERY_STEP, assert_same_weights

DATA = Path(__file__).parent / "data"
EMA = ["trainer.ema_decay=0.5", "trainer.ema_warmup=false"]  # far from the raw weights in 6 steps


def tiny_method(method: str, *overrides: str):
    cfg = compose_config(["paths.data_dir=unused", *TINY, f"method={method}", *overrides])
    torch.manual_seed(0)
    built = build_method(cfg, torch.device("cpu"), SingleProcess())
    built.start(steps_per_epoch=3)
    return built


def fixed_batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {k: torch.rand(2, 3, 32, 32, generator=g) * 2 - 1 for k in "AB"}


def test_update_follows_the_equation_and_copies_buffers() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    ema = GeneratorEMA({"G": net}, decay=0.9, warmup=False)
    before = {k: v.clone() for k, v in ema.averaged["G"].state_dict().items()}
    with torch.no_grad():
        net[0].weight.add_(1.0)
    net(torch.randn(2, 3, 8, 8))  # batch norm's running statistics move (train mode)
    ema.update(step=0)
    avg = ema.averaged["G"]
    torch.testing.assert_close(avg[0].weight, 0.9 * before["0.weight"] + 0.1 * net[0].weight)
    assert torch.equal(avg[1].running_mean, net[1].running_mean)  # copied, not averaged
    assert not any(p.requires_grad for p in avg.parameters())  # no optimizer or DDP sees it
    assert set(ema.state_dict()) == {f"G.{k}" for k in net.state_dict()}
    ramp = GeneratorEMA({"G": net}, decay=0.999, warmup=True)
    assert [ramp.decay_at(n) for n in (0, 90, 10**6)] == [0.1, 0.91, 0.999]
    for bad in (0.0, 1.0, -0.5):
        with pytest.raises(ValueError, match=r"trainer.ema_decay=.*: use a value in \(0, 1\)"):
            GeneratorEMA({"G": net}, decay=bad, warmup=False)


@pytest.mark.parametrize("method", ["cyclegan", "cut", "fastcut"])
def test_the_average_leaves_training_alone(method: str) -> None:
    """Three steps with and without EMA: the same losses and trained weights, bit for bit; off
    keeps no average, writes none into checkpoints and scores the trained generators."""
    runs = {}
    for overrides in ([], EMA):
        m = tiny_method(method, *overrides)
        batch = fixed_batch()
        losses = []
        for _ in range(3):
            losses.append({k: float(v) for k, v in m.training_step(batch).items()})
            m.after_step()
        runs[bool(overrides)] = (m, losses)
    (off, losses_off), (on, losses_on) = runs[False], runs[True]
    assert losses_off == losses_on
    assert_same_weights(off.model.state_dict(), on.model.state_dict())
    assert off.ema is None and "ema" not in off.state_dict() and off.scored_weights == "raw"
    assert off.scored_translators() == off.translators()
    modules = {"cyclegan": {"G_AB", "G_BA"}}.get(method, {"G"})
    assert {k.split(".")[0] for k in on.state_dict()["ema"]} == modules
    scored = on.scored_translators()
    assert scored.keys() == on.translators().keys() and on.scored_weights == "ema"
    for direction, G in scored.items():
        assert G is not on.translators()[direction]
        averaged, trained = next(G.parameters()), next(on.translators()[direction].parameters())
        assert not torch.equal(averaged, trained)


def test_ema_warmup_ramps_the_first_updates() -> None:
    """trainer.ema_warmup reaches the average: after one step it is (1 - d) of the way from the
    initial to the trained weights, d = min(0.5, 1/10) with the ramp and 0.5 without."""
    for warmup, d in (("true", 0.1), ("false", 0.5)):
        m = tiny_method("cyclegan", "trainer.ema_decay=0.5", f"trainer.ema_warmup={warmup}")
        start = m.model.G_AB.model[1].weight.detach().clone()
        m.training_step(fixed_batch())
        m.after_step()
        trained = m.model.G_AB.model[1].weight
        expected = d * start + (1 - d) * trained
        torch.testing.assert_close(m.ema.averaged["G_AB"].model[1].weight, expected)


@pytest.fixture(scope="module")
def ema_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """A 6-step CycleGAN run with the average on, evaluated every epoch (best.pt written), the
    trained generators scored too (trainer.eval_raw)."""
    tmp = tmp_path_factory.mktemp("ema_run")
    cfg = compose_config(
        [*TINY, f"paths.data_dir={tmp / 'data'}", f"paths.output_dir={tmp / 'run'}",
         "trainer.eval_every=1", "logger=file", "trainer.eval_raw=true", *EMA]
    )  # fmt: skip
    train(cfg)
    return tmp / "run", cfg


def test_ema_decay_reaches_evaluation_samples_and_checkpoint(ema_run) -> None:
    run, cfg = ema_run
    summary = json.loads((run / "summary.json").read_text())
    assert summary["eval/weights"] == "ema"
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    generators = {k: v for k, v in state["model"].items() if k.startswith("G_")}
    assert state["ema"].keys() == generators.keys()
    assert any(not torch.equal(state["ema"][k], v) for k, v in generators.items())
    # The end-of-run evaluation scored the average: evaluate reproduces it from the checkpoint;
    # best.pt holds the average best/psnr_AB was measured on.
    ckpt = run / "checkpoints" / "last.pt"
    scored = evaluate_cli.evaluate(ckpt, extractor=TinyExtractor(), device="cpu")
    raw = evaluate_cli.evaluate(ckpt, extractor=TinyExtractor(), device="cpu", averaged="raw")
    assert (scored["weights"], raw["weights"]) == ("ema", "raw")
    for key in ("eval/psnr_AB", "eval/ssim_BA"):
        assert scored["metrics"][key] == pytest.approx(summary[key], rel=1e-6), key
    assert raw["metrics"]["eval/psnr_AB"] != pytest.approx(summary["eval/psnr_AB"], rel=1e-6)
    # trainer.eval_raw: the trained generators scored beside the average, as eval/raw/...
    for key in ("psnr_AB", "ssim_AB", "psnr_BA", "ssim_BA"):
        assert summary[f"eval/raw/{key}"] == pytest.approx(raw["metrics"][f"eval/{key}"], rel=1e-6)
        assert f"best/raw/{key}" in summary
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert sum("eval/raw/psnr_AB" in row for row in history) == 2  # every epoch, the end included
    best = evaluate_cli.evaluate(run / "checkpoints" / "best.pt", device="cpu", fid=False)
    assert best["metrics"]["eval/psnr_AB"] == pytest.approx(summary["best/psnr_AB"], rel=1e-6)
    # The last sample grid shows the average's translations, not the trained generators'.
    spec = instantiate(cfg.dataset)
    root = prepare_dataset(spec.root, spec.synthetic)
    _, samples = build_evaluation(cfg, spec, root, torch.device("cpu"))
    written = np.asarray(Image.open(run / "samples" / "step_0000006.png"))
    for weights, same in (("auto", True), ("raw", False)):
        G = {d[0] + d[-1]: load_generator(ckpt, d, weights=weights).generator for d in Direction}
        path = save_sample_grid(
            sample_rows(G, samples, torch.device("cpu")), run / f"{weights}.png"
        )
        assert np.array_equal(np.asarray(Image.open(path)), written) == same, weights


def test_export_and_translate_use_the_average_unless_raw(ema_run, tmp_path: Path, capsys) -> None:
    run, _ = ema_run
    ckpt = run / "checkpoints" / "last.pt"
    state = load_checkpoint(ckpt)
    for weights, entry in (("auto", "ema"), ("raw", "model")):
        out = tmp_path / weights
        assert export_cli.main([f"ckpt={ckpt}", f"output={out}", f"weights={weights}"]) == 0
        info = json.loads((out / "G_AB.json").read_text())
        assert info["source"]["weights"] == ("ema" if weights == "auto" else "raw")
        exported = load_generator(out / "G_AB.safetensors").generator.state_dict()
        for key, value in exported.items():
            assert torch.equal(value, state[entry][f"G_AB.{key}"]), (weights, key)
    # An export of the average holds nothing else: weights=raw of it is one line, exit 2.
    photo = tmp_path / "in" / "a.png"
    photo.parent.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), np.uint8)).save(photo)
    args = [f"input={photo}", "progress=false"]
    export_of_ema = tmp_path / "auto" / "G_AB.safetensors"
    capsys.readouterr()
    assert translate_cli.main([f"ckpt={export_of_ema}", f"output={tmp_path / 'x'}", "weights=raw", *args]) == 2  # fmt: skip
    assert capsys.readouterr().err.strip() == (
        f"error: weights=raw: '{export_of_ema}' holds the generators' average only (an export "
        "of weights=ema); use weights=ema or drop weights="
    )
    images = {}
    for name, ckpt_args in (("ema", [f"ckpt={ckpt}"]), ("raw", [f"ckpt={ckpt}", "weights=raw"]),
                            ("export", [f"ckpt={export_of_ema}", "weights=ema"])):  # fmt: skip
        assert translate_cli.main([*ckpt_args, f"output={tmp_path / name}", *args]) == 0
        images[name] = np.asarray(Image.open(tmp_path / name / "a.png"))
    assert np.array_equal(images["ema"], images["export"])
    assert not np.array_equal(images["ema"], images["raw"])


@pytest.mark.parametrize(
    ("tool", "extra"),
    [(translate_cli, ["input=in.png", "output=out"]), (export_cli, ["output=out"]),
     (evaluate_cli, [])],
)  # fmt: skip
@pytest.mark.parametrize(
    "ckpt", ["v1-methods/cyclegan_final_model.pt", "pytorch_gan_G_AB_blocks1.pth"]
)
def test_weights_ema_without_an_average_is_one_line(
    tool, extra, ckpt, capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (32, 32)).save("in.png")
    path = DATA / ckpt
    assert tool.main([f"ckpt={path}", "weights=ema", *extra]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: weights=ema: '{path}' holds no generator average (trained with "
        "trainer.ema_decay=0, or not by train.py); use weights=raw or drop weights="
    )
    assert load_generator(path, weights="raw").weights == "raw"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("n", [1, 4])  # mid-epoch 0 between lazy R1 steps, mid-epoch 1 on one
def test_resume_with_the_average_is_bit_exact(n: int, compose_cfg, tmp_path: Path) -> None:
    """Interrupted at step n and resumed equals uninterrupted: trained and averaged weights (with
    the warm-up ramp), and a lazy R1 that must go on at the same steps."""
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    settings = [*EVERY_STEP, "trainer.ema_decay=0.9", "loss.lambda_r1=1", "loss.reg_every=2"]
    train(compose_cfg(*settings, f"paths.output_dir={full}"))
    step_n = full / "checkpoints" / f"step_{n:07d}.pt"
    train(compose_cfg(*settings, f"paths.output_dir={resumed}", f"resume={step_n}"))
    a, b = (load_checkpoint(r / "checkpoints" / "last.pt") for r in (full, resumed))
    assert a["step"] == b["step"] == 6
    assert_same_weights(a["model"], b["model"])
    assert_same_weights(a["ema"], b["ema"])
    assert not torch.equal(a["ema"]["G_AB.model.1.weight"], a["model"]["G_AB.model.1.weight"])


def test_turning_the_average_on_at_a_resume_starts_it_from_the_loaded_weights(
    compose_cfg, tmp_path: Path, caplog
) -> None:
    first = tmp_path / "first"
    train(compose_cfg(*EVERY_STEP, f"paths.output_dir={first}", "schedule.n_epochs=1"))
    saved = load_checkpoint(first / "checkpoints" / "last.pt")
    cfg = compose_cfg(*EVERY_STEP, "trainer.ema_decay=0.5", "trainer.ema_warmup=false")
    m = build_method(cfg, torch.device("cpu"), SingleProcess())
    with caplog.at_level("INFO"):
        m.load_state_dict(saved)
    assert "the checkpoint has no generator average" in caplog.text
    assert_same_weights(
        {k: v for k, v in saved["model"].items() if k.startswith("G_")}, m.ema.state_dict()
    )


@pytest.mark.parametrize("method", ["cut", "fastcut"])
def test_eval_raw_scores_the_one_sided_generator_too(method: str, tmp_path: Path) -> None:
    """CUT/FastCUT with the average and trainer.eval_raw: eval/raw/ holds the trained G's A->B
    scores, apart from the average's, and no B->A (one-sided); off, no eval/raw/ keys."""
    summaries = {}
    for raw in ("true", "false"):
        run = tmp_path / raw
        cfg = compose_config(
            [*TINY, f"method={method}", f"paths.data_dir={tmp_path / 'data'}",
             f"paths.output_dir={run}", "logger=file", f"trainer.eval_raw={raw}", *EMA]
        )  # fmt: skip
        train(cfg)
        summaries[raw] = json.loads((run / "summary.json").read_text())
    on, off = summaries["true"], summaries["false"]
    assert {k for k in on if k.startswith("eval/raw/")} == {"eval/raw/psnr_AB", "eval/raw/ssim_AB"}
    assert on["eval/raw/psnr_AB"] != pytest.approx(on["eval/psnr_AB"], rel=1e-6)
    assert on["eval/psnr_AB"] == off["eval/psnr_AB"]  # scoring the raw weights changes nothing
    assert not any(k.startswith(("eval/raw/", "best/raw/")) for k in off)
