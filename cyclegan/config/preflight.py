"""Before a sweep starts: will its jobs produce the metric it ranks by?

A sweep of GAN runs costs hours; one whose jobs never compute the ranked metric (PSNR on a dataset
without a paired test set, FID/KID without the Inception weights) ends with a table of dashes.
`check_ranking` composes the first job's config the way `train.py` will, and says in one line what
to change, before any job starts. A metric the user names with `--metric` is checked the same way:
naming another metric is how to start a sweep the default would refuse.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cyclegan.evaluation.ranking import fid_enabled

# Prefixes of summary keys an evaluation produces ("best/" is the best value of an "eval/" key).
EVALUATED = ("eval/", "best/")
PAIRED_METRICS = ("psnr", "ssim")  # need ground truth: a paired test set
DISTRIBUTION_METRICS = ("fid", "kid")  # need the Inception network (or an injected extractor)


class RankingUnavailable(ValueError):
    """The sweep's jobs would not produce the metric it ranks by; the message says what to do."""


def _metric_name(key: str) -> str:
    """`eval/kid_AB` -> `kid`."""
    return key.split("/", 1)[-1].split("_", 1)[0].lower()


def inception_problem(
    weights: str | None, fetch: Callable[[str | None], Any] | None = None
) -> str | None:
    """Why FID/KID cannot be computed, or None when the Inception weights are at hand.

    `weights` (trainer.inception_weights) must be a file; without it the weights are looked up in
    the torch hub cache and, when missing, fetched once here (`fetch`, by default
    `cyclegan.evaluation.distribution.load_inception`, which downloads into the cache), so the
    jobs, however many run at once, find them cached and none downloads on its own.
    """
    from cyclegan.evaluation.distribution import (
        INCEPTION_FILE,
        INCEPTION_URL,
        InceptionUnavailableError,
        inception_cache_path,
        load_inception,
    )

    cache = inception_cache_path()
    fix = (
        f"download {INCEPTION_URL} on a machine with internet and copy it to {cache}, or pass "
        f"trainer.inception_weights=/path/to/{INCEPTION_FILE}"
    )
    if weights is not None:
        return (
            None
            if Path(weights).is_file()
            else f"trainer.inception_weights={weights}: no such file; {fix}"
        )
    if cache.is_file():
        return None
    try:
        (fetch or load_inception)(None)
    except InceptionUnavailableError as exc:  # its message names the cache path and the download
        return f"{exc}; in a training config: trainer.inception_weights=/path/to/{INCEPTION_FILE}"
    return None


def metric_problem(
    metric: str,
    paired_test: bool,
    eval_fid: bool,
    inception: Callable[[], str | None],
    dataset: str = "the dataset",
    consequence: str = "the sweep would rank nothing",
) -> str | None:
    """Why jobs configured so would not report `metric`, or None when they would (or when it is
    not an evaluation metric: losses and times are always there). `inception` is asked only when
    the metric needs the network."""
    if not metric.startswith(EVALUATED):
        return None
    name = _metric_name(metric)
    rank_by_kid = (
        "rank by KID instead: trainer.eval_fid=true optimized_metric=eval/kid_AB "
        "optimized_mode=min, or name another summary key with --metric KEY"
    )
    if name in PAIRED_METRICS and not paired_test:
        return (
            f"{dataset} has no paired test set (dataset.paired_test=false), so {metric} is never "
            f"computed and {consequence}; {rank_by_kid}"
        )
    if name in DISTRIBUTION_METRICS:
        if not eval_fid:
            return (
                f"{metric} is computed only with trainer.eval_fid=true; add it, or name another "
                "metric with --metric KEY"
            )
        problem = inception()
        if problem is not None:
            return f"{metric}: {problem}; or name another metric with --metric KEY"
    return None


def first_job_overrides(overrides: list[str]) -> list[str]:
    """The overrides of a multirun's first job: a sweep (`a=1,2`) becomes its first value; ranges
    and intervals (Optuna's) and Hydra's own keys are left out (they do not decide the metric)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    first = []
    for text in overrides:
        override = parser.parse_override(text)
        key = override.get_key_element()
        if key.lstrip("+~").startswith("hydra"):
            continue
        if override.is_sweep_override():
            try:
                value = next(iter(override.sweep_string_iterator()))
            except Exception:  # range/interval sweeps: no first value to take
                continue
            first.append(f"{key}={value}")
        else:
            first.append(text)
    return first


def compose_first_job(conf_dir: Path, grid: str, overrides: list[str]) -> Any:
    """The composed config of the grid's first job (the same config groups train.py uses)."""
    from cyclegan.config.compose import compose_config

    return compose_config([f"+experiment/sweeps={grid}", *first_job_overrides(overrides)])


def check_ranking(
    conf_dir: Path,
    grid: str,
    overrides: list[str],
    metric: str | None,
    inception: Callable[[str | None], str | None] = inception_problem,
) -> str:
    """The metric the sweep will rank by; RankingUnavailable when its jobs would not report it.

    A config that does not compose is left to the multirun, whose error names the bad override.
    """
    try:
        cfg = compose_first_job(conf_dir, grid, overrides)
    except Exception:
        return metric or ""
    ranked = metric or str(cfg.optimized_metric)
    paired = bool(cfg.dataset.get("paired_test", False))
    problem = metric_problem(
        ranked,
        paired_test=paired,
        eval_fid=fid_enabled(cfg.trainer.get("eval_fid"), paired),
        # A configured feature network (trainer.feature_extractor) replaces Inception.
        inception=lambda: (
            None
            if cfg.trainer.get("feature_extractor") is not None
            else inception(cfg.trainer.get("inception_weights"))
        ),
        dataset=f"dataset={cfg.dataset.get('name', '?')}",
    )
    if problem is not None:
        raise RankingUnavailable(problem)
    return ranked
