"""A sweep that would rank nothing does not start; the Inception weights are checked before it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from cyclegan.config.preflight import (
    RankingUnavailable,
    check_ranking,
    first_job_overrides,
    inception_problem,
    metric_problem,
)
from cyclegan.evaluation import distribution
from cyclegan.evaluation.distribution import INCEPTION_FILE, InceptionUnavailableError
from cyclegan.sweeps.sweep import main
from cyclegan.training.builder import train

from .conftest import CONF, ROOT, TINY
from .test_sweep import make_unpaired_folder


def no_inception() -> str:
    return "no weights"


def test_metric_problem_names_what_to_change() -> None:
    ok = {"inception": lambda: None}
    assert metric_problem("eval/psnr_AB", paired_test=True, eval_fid=False, **ok) is None
    assert metric_problem("final/train/loss_G", paired_test=False, eval_fid=False, **ok) is None
    assert metric_problem("eval/kid_AB", paired_test=False, eval_fid=True, **ok) is None
    unpaired = metric_problem(
        "best/ssim_AB", paired_test=False, eval_fid=False, dataset="dataset=horse2zebra", **ok
    )
    assert unpaired == (
        "dataset=horse2zebra has no paired test set (dataset.paired_test=false), so best/ssim_AB "
        "is never computed and the sweep would rank nothing; rank by KID instead: "
        "trainer.eval_fid=true optimized_metric=eval/kid_AB optimized_mode=min, or name another "
        "summary key with --metric KEY"
    )
    assert metric_problem("eval/fid_BA", paired_test=False, eval_fid=False, **ok) == (
        "eval/fid_BA is computed only with trainer.eval_fid=true; add it, or name another "
        "metric with --metric KEY"
    )
    missing = metric_problem("eval/kid_AB", paired_test=True, eval_fid=True, inception=no_inception)
    assert missing == "eval/kid_AB: no weights; or name another metric with --metric KEY"


def test_inception_problem_checks_file_cache_then_fetches_once(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cache = tmp_path / "torch" / "hub" / "checkpoints" / INCEPTION_FILE
    calls = []

    def offline(weights: str | None) -> None:
        calls.append(weights)
        raise InceptionUnavailableError(f"weights not in {cache}: network unreachable")

    problem = inception_problem(None, fetch=offline)
    assert calls == [None] and problem == (
        f"weights not in {cache}: network unreachable; in a training config: "
        f"trainer.inception_weights=/path/to/{INCEPTION_FILE}"
    )
    assert inception_problem(None, fetch=lambda weights: None) is None  # fetched into the cache

    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"weights")
    assert inception_problem(None, fetch=offline) is None and calls == [None]  # not fetched again
    given = tmp_path / "mine.pth"
    problem = inception_problem(str(given), fetch=offline)
    assert problem.startswith(f"trainer.inception_weights={given}: no such file; download ")
    assert str(cache) in problem and "\n" not in problem
    given.write_bytes(b"weights")
    assert inception_problem(str(given), fetch=offline) is None


def test_first_job_overrides_take_each_sweeps_first_value() -> None:
    assert first_job_overrides(
        [
            "loss.lambda_cyc=5,10",
            "dataset=horse2zebra",
            "optim.lr=tag(log, interval(1e-5, 1e-3))",
            "hydra/launcher=parallel",
            "hydra.sweep.dir=x",
            "+trainer.extra=choice(a,b)",
        ]
    ) == ["loss.lambda_cyc=5", "dataset=horse2zebra", "+trainer.extra=a"]


def test_check_ranking_composes_the_first_job() -> None:
    ready = {"inception": lambda weights: None}
    assert check_ranking(CONF, "lambda_grid", [], None, **ready) == "eval/psnr_AB"  # paired
    # Unpaired: KID by default (FID/KID evaluated by default there), checked for the weights.
    h2z = ["dataset=horse2zebra", "optim.lr=1e-4,2e-4"]
    assert check_ranking(CONF, "lr_grid", h2z, None, **ready) == "eval/kid_AB"
    with pytest.raises(RankingUnavailable, match=r"^eval/kid_AB: offline; or name another"):
        check_ranking(CONF, "lr_grid", h2z, None, inception=lambda w: "offline")
    psnr = [*h2z, "optimized_metric=eval/psnr_AB"]
    with pytest.raises(RankingUnavailable, match=r"dataset=horse2zebra has no paired test set"):
        check_ranking(CONF, "lr_grid", psnr, None, **ready)
    with pytest.raises(RankingUnavailable, match=r"eval/kid_AB is computed only with trainer.eval"):
        check_ranking(CONF, "lr_grid", [*h2z, "trainer.eval_fid=false"], None, **ready)
    # Naming another metric starts the sweep.
    assert check_ranking(CONF, "lr_grid", psnr, "final/train/loss_G") == "final/train/loss_G"


@pytest.fixture
def offline(monkeypatch) -> None:
    """No Inception weights to be had: nothing cached, no network (and no test downloads)."""

    def unavailable(weights: str | None = None) -> None:
        raise InceptionUnavailableError("the Inception weights are not cached (offline)")

    monkeypatch.setattr(distribution, "inception_cache_path", lambda: Path("/nonexistent.pth"))
    monkeypatch.setattr(distribution, "load_inception", unavailable)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "error: eval/kid_AB: the Inception weights are not cached (offline); in a training "),
        (["optimized_metric=eval/psnr_AB"], "error: dataset=horse2zebra has no paired test set"),
    ],
)
def test_sweep_that_would_rank_nothing_does_not_start(
    extra: list[str], message: str, offline, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["lr_grid", "dataset=horse2zebra", f"dataset.root={tmp_path / 'mine'}", *extra]
    assert main(args, root=ROOT) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
    assert not (tmp_path / "multirun").exists()  # nothing started, no directory made


@pytest.mark.slow  # ~14 s: building the Inception network before its weights are refused
def test_a_run_without_inception_says_so_before_training(
    compose_cfg, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Offline on an unpaired dataset (KID by default): one line before the first step names
    the key and the cache path; the run goes on and returns None (conftest: no download)."""
    caplog.set_level(logging.INFO)
    make_unpaired_folder(tmp_path / "mine")
    own = [o for o in TINY if not o.startswith("dataset.")]
    cfg = compose_cfg(*own, "dataset=folder", f"dataset.root={tmp_path / 'mine'}", "logger=file")
    assert (cfg.optimized_metric, cfg.optimized_mode) == ("eval/kid_AB", "min")
    assert train(cfg) is None
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    before = next(i for i, r in enumerate(caplog.records) if "steps/epoch" in r.getMessage())
    inception = [i for i, r in enumerate(caplog.records) if "Inception weights" in r.getMessage()]
    assert inception and inception[0] < before  # said before training started
    line = caplog.records[inception[0]].getMessage()
    assert "\n" not in line and "trainer.inception_weights=" in line
    assert str(distribution.inception_cache_path()) in line
    assert any("'eval/kid_AB' is not in the summary" in w for w in warnings)
