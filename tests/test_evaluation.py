"""FID/KID math against a direct numpy/scipy computation, the evaluation pipeline, and its CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from scipy import linalg
from torch import nn

from cyclegan.config.schema import register_configs
from cyclegan.evaluation import distribution as evaluation
from cyclegan.evaluation import evaluator as evaluator_module
from cyclegan.evaluation.distribution import (
    DistributionMetrics,
    InceptionUnavailableError,
    load_inception,
)
from cyclegan.evaluation.evaluator import TranslationEvaluator
from cyclegan.evaluation.paired import score
from cyclegan.evaluation.ranking import lower_is_better
from cyclegan.inference.evaluate import evaluate, main
from cyclegan.training.builder import train

from .conftest import CONF, TINY


def fid_numpy(real: np.ndarray, fake: np.ndarray) -> float:
    mu1, mu2 = real.mean(0), fake.mean(0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def kid_numpy(real: np.ndarray, fake: np.ndarray) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3."""
    d = real.shape[1]

    def k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (a @ b.T / d + 1) ** 3

    m = real.shape[0]
    kxx, kyy, kxy = k(real, real), k(fake, fake), k(real, fake)
    off = lambda kk: (kk.sum() - np.trace(kk)) / (m * (m - 1))  # noqa: E731
    return float(off(kxx) + off(kyy) - 2 * kxy.mean())


@pytest.fixture
def feature_sets() -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(0)
    real = rng.normal(size=(40, 6))
    fake = rng.normal(0.3, 1.4, size=(40, 6)) + rng.normal(size=(40, 1))  # shifted, correlated
    return torch.from_numpy(real), torch.from_numpy(fake)


def test_fid_and_kid_match_numpy(feature_sets) -> None:
    real, fake = feature_sets
    values = DistributionMetrics(real)(fake)
    assert values["fid"] == pytest.approx(fid_numpy(real.numpy(), fake.numpy()), rel=1e-6)
    # subset size = all 40 samples, so every subset is the whole set: KID = MMD^2, std 0.
    assert values["kid"] == pytest.approx(kid_numpy(real.numpy(), fake.numpy()), rel=1e-6)
    assert values["kid_std"] == pytest.approx(0.0, abs=1e-12)
    same = DistributionMetrics(real)(real)
    assert same["fid"] == pytest.approx(0.0, abs=1e-6)
    assert values["fid"] > 1.0 and values["kid"] > 0.0


def test_kid_subsets_are_reproducible_and_leave_the_rng_alone(feature_sets) -> None:
    real, fake = feature_sets
    metric = DistributionMetrics(real, kid_subsets=20, kid_subset_size=10)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first, second = metric(fake), metric(fake)
    assert torch.equal(torch.get_rng_state(), before)
    assert first == second and first["kid_std"] > 0
    # Subsets of 10 scatter around the full-set value.
    assert abs(first["kid"] - kid_numpy(real.numpy(), fake.numpy())) < 3 * first["kid_std"] + 0.1


def test_lower_is_better() -> None:
    assert lower_is_better("eval/fid_AB") and lower_is_better("best/kid_BA")
    assert not lower_is_better("eval/psnr_AB") and not lower_is_better("eval/ssim_BA")


class TinyExtractor(nn.Module):
    """Stands in for Inception: uint8 (B, 3, H, W) -> 4x4 average colours (B, 48)."""

    num_features = 48

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.dtype == torch.uint8 and x.shape[1] == 3
        self.calls += 1
        return nn.functional.adaptive_avg_pool2d(x.float() / 255, 4).flatten(1)


class Shift(nn.Module):
    """A 'generator' that brightens its input: identity-like, with a parameter for the device."""

    def __init__(self, amount: float) -> None:
        super().__init__()
        self.amount = nn.Parameter(torch.tensor(amount))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x + self.amount).clamp(-1, 1)


def test_pipeline_with_a_small_extractor() -> None:
    torch.manual_seed(0)
    test_A = torch.rand(12, 3, 16, 16) * 2 - 1
    test_B = (test_A + 0.5).clamp(-1, 1)  # the "true translation" is a brightening
    from cyclegan.evaluation.paired import PairedEvaluator

    paired = PairedEvaluator(
        test_A, test_B, test_A.mean(0, keepdim=True), test_B.mean(0, keepdim=True)
    )
    evaluator = TranslationEvaluator(test_A, test_B, paired, TinyExtractor(), batch_size=5)
    identity = evaluator(Shift(0.0), Shift(0.0))
    # The identity generator scores exactly the identity baselines, paired and distributional.
    for key in ("psnr_AB", "ssim_BA"):
        assert identity[f"eval/{key}"] == pytest.approx(
            evaluator.baselines[f"baseline/identity/{key}"]
        )
    for key in ("fid_AB", "kid_AB", "fid_BA", "kid_BA"):
        assert identity[f"eval/{key}"] == pytest.approx(
            evaluator.baselines[f"baseline/identity/{key}"]
        )
    good = evaluator(Shift(0.5), Shift(-0.5))
    assert good["eval/fid_AB"] < identity["eval/fid_AB"] / 10
    assert good["eval/psnr_AB"] == pytest.approx(score(Shift(0.5)(test_A).detach(), test_B)["psnr"])
    assert "eval/kid_std_AB" not in good  # training logs stay to metrics with a "best"
    only_ab = evaluator(Shift(0.5), None)
    assert set(only_ab) == {"eval/psnr_AB", "eval/ssim_AB", "eval/fid_AB", "eval/kid_AB"}


def test_missing_weights_say_how_to_provide_them(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(
        InceptionUnavailableError, match="inception_weights=/path/to/weights-inception"
    ):
        load_inception(tmp_path / "nowhere.pth")
    fidelity = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")

    def offline(*args, **kwargs):
        raise OSError("<urlopen error [Errno -2] Name or service not known>")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty cache
    monkeypatch.setattr(fidelity, "load_state_dict_from_url", offline)
    with pytest.raises(InceptionUnavailableError) as err:
        load_inception()
    message = str(err.value)
    assert "download failed" in message and evaluation.INCEPTION_URL in message
    assert str(tmp_path / "torch" / "hub" / "checkpoints" / evaluation.INCEPTION_FILE) in message


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few-step run on the built-in dataset, FID during training via the small extractor.

    Module-scoped (one training run for the three tests that read it), so it composes the config
    itself instead of using the function-scoped `compose_cfg`.
    """
    base = tmp_path_factory.mktemp("trained")
    register_configs()
    GlobalHydra.instance().clear()
    with (
        initialize_config_dir(config_dir=str(CONF), version_base="1.3"),
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setattr(evaluator_module, "load_inception", lambda weights=None: TinyExtractor())
        cfg = compose(
            config_name="config",
            overrides=[
                f"paths.data_dir={base / 'data'}",
                f"paths.output_dir={base / 'run'}",
                *TINY,
                "logger=file",
                "trainer.eval_every=1",
                "trainer.eval_fid=true",
                "trainer.sample_every=0",
            ],
        )
        train(cfg)
    GlobalHydra.instance().clear()
    return base / "run"


def test_training_logs_fid_and_tracks_best_and_final(trained_run: Path) -> None:
    summary = json.loads((trained_run / "summary.json").read_text())
    rows = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
    fids = [r["eval/fid_AB"] for r in rows if "eval/fid_AB" in r]
    psnrs = [r["eval/psnr_AB"] for r in rows if "eval/psnr_AB" in r]
    assert len(fids) == 2  # after epoch 1 (eval_every) and at the end
    assert summary["eval/fid_AB"] == fids[-1] and summary["best/fid_AB"] == min(fids)
    assert summary["best/psnr_AB"] == max(psnrs)
    assert "baseline/identity/kid_BA" in summary


def test_summary_states_the_evaluation_protocol(trained_run: Path) -> None:
    """What the numbers were measured on, so that runs measured differently are not compared."""
    protocol = json.loads((trained_run / "summary.json").read_text())["eval_protocol"]
    assert protocol == {
        "metrics": ["psnr", "ssim", "fid", "kid"],
        "test_images": {"A": 4, "B": 4},
        "image_size": [32, 32],
        "paired": True,
        "psnr_ssim": protocol["psnr_ssim"],
        "fid_kid": {
            "feature_network": "tests.test_evaluation.TinyExtractor",
            "weights_file": None,  # a network without a weights file: the hash of its state
            "weights_sha256": hashlib.sha256().hexdigest(),  # (it has no parameters)
            "kid_subsets": 100,
            "kid_subset_size": 1000,
        },
    }
    assert "Gaussian window 11" in protocol["psnr_ssim"]


def test_evaluate_a_trained_checkpoint(trained_run: Path, tmp_path: Path) -> None:
    ckpt = trained_run / "checkpoints" / "last.pt"
    result = evaluate(ckpt, extractor=TinyExtractor(), device="cpu")
    summary = json.loads((trained_run / "summary.json").read_text())
    assert result["paired"] and result["n_test"] == {"A": 4, "B": 4}
    # Same code as the end-of-training evaluation: the same numbers.
    for key in ("eval/psnr_AB", "eval/ssim_BA", "eval/fid_AB", "eval/kid_BA"):
        assert result["metrics"][key] == pytest.approx(summary[key], rel=1e-6), key
    assert result["metrics"]["eval/kid_std_AB"] >= 0


def test_evaluate_cli_offline_still_reports_paired_metrics(
    trained_run: Path, tmp_path: Path, capsys
) -> None:
    ckpt = trained_run / "checkpoints" / "last.pt"
    out = tmp_path / "eval.json"
    status = main(
        [
            f"ckpt={ckpt}",
            "device=cpu",
            f"inception_weights={tmp_path / 'none.pth'}",
            f"output={out}",
        ]
    )
    captured = capsys.readouterr()
    assert status == 0
    assert "A->B PSNR" in captured.out and "FID" not in captured.out
    assert "inception_weights=" in captured.err
    result = json.loads(out.read_text())
    assert "eval/psnr_BA" in result["metrics"] and result["fid_skipped"]
    assert sorted(p.name for p in tmp_path.iterdir() if "eval.json" in p.name) == ["eval.json"]
    assert main([f"ckpt={ckpt}", "data=/no/such/folder", "fid=false"]) == 2


def test_psnr_and_ssim_agree_with_torchmetrics() -> None:
    """Every quality number rests on these two; an independent implementation must agree."""
    from torchmetrics.functional.image import (
        peak_signal_noise_ratio,
        structural_similarity_index_measure,
    )

    from cyclegan.evaluation.paired import psnr, ssim

    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 48, 40, generator=g)
    y = (x + 0.1 * torch.randn(4, 3, 48, 40, generator=g)).clamp(0, 1)
    for i in range(4):
        expected_psnr = peak_signal_noise_ratio(x[i : i + 1], y[i : i + 1], data_range=1.0)
        # torchmetrics averages the SSIM map over reflection-padded borders too; ours (like the
        # reference MATLAB code) over valid windows only: its map without the 5-pixel border.
        _, full = structural_similarity_index_measure(
            x[i : i + 1], y[i : i + 1], data_range=1.0, sigma=1.5, return_full_image=True
        )
        expected_ssim = full[..., 5:-5, 5:-5].mean()
        assert psnr(x, y)[i].item() == pytest.approx(expected_psnr.item(), abs=1e-4)
        assert ssim(x, y)[i].item() == pytest.approx(expected_ssim.item(), abs=1e-5)
    assert psnr(x, x).min().item() > 100 and ssim(x, x).min().item() == pytest.approx(1.0)
