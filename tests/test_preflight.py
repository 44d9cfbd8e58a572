"""A sweep that would rank nothing does not start; the Inception weights are checked before it."""

from __future__ import annotations

from pathlib import Path

import pytest

from cyclegan.evaluation.distribution import INCEPTION_FILE, InceptionUnavailableError
from cyclegan.preflight import (
    RankingUnavailable,
    check_ranking,
    first_job_overrides,
    inception_problem,
    metric_problem,
)
from cyclegan.sweep import main

from .conftest import CONF, ROOT


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
        raise InceptionUnavailableError("urlopen error: network unreachable")

    problem = inception_problem(None, fetch=offline)
    assert calls == [None] and problem is not None
    assert f"not in {cache} and could not be fetched (urlopen error" in problem
    assert f"trainer.inception_weights=/path/to/{INCEPTION_FILE}" in problem and "\n" not in problem
    assert inception_problem(None, fetch=lambda weights: None) is None  # fetched into the cache

    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"weights")
    assert inception_problem(None, fetch=offline) is None and calls == [None]  # not fetched again
    given = tmp_path / "mine.pth"
    assert inception_problem(str(given), fetch=offline).startswith(
        f"trainer.inception_weights={given}: no such file; download "
    )
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
    assert check_ranking(CONF, "lambda_grid", [], None) == "eval/psnr_AB"  # built-in: paired
    with pytest.raises(RankingUnavailable, match=r"dataset=horse2zebra has no paired test set"):
        check_ranking(CONF, "lr_grid", ["dataset=horse2zebra", "optim.lr=1e-4,2e-4"], None)
    # Naming another metric starts the sweep; KID is checked for eval_fid and the weights.
    assert check_ranking(CONF, "lr_grid", ["dataset=horse2zebra"], "final/train/loss_G") == (
        "final/train/loss_G"
    )
    kid = ["dataset=horse2zebra", "trainer.eval_fid=true", "optimized_metric=eval/kid_AB"]
    assert check_ranking(CONF, "lr_grid", kid, None, inception=lambda w: None) == "eval/kid_AB"
    with pytest.raises(RankingUnavailable, match=r"^eval/kid_AB: offline; or name another"):
        check_ranking(CONF, "lr_grid", kid, None, inception=lambda w: "offline")


def test_sweep_that_would_rank_nothing_does_not_start(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["lr_grid", "dataset=horse2zebra", f"dataset.root={tmp_path / 'mine'}"]
    assert main(args, root=ROOT) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("error: dataset=horse2zebra has no paired test set") and err.count("\n") == 1
    )
    assert not (tmp_path / "multirun").exists()  # nothing started, no directory made
