"""The OmegaConf resolvers the configs use; `register_resolvers()` before Hydra composes.

    ${stamp:%Y-%m-%d_%H-%M-%S}        a directory stamp unique per run (run_identity.unique_stamp)
    ${default_metric:${dataset.paired_test}}   eval/psnr_AB on paired test sets, else eval/kid_AB
    ${default_mode:${optimized_metric}}        min for FID/KID/LPIPS/losses/times, else max
    ${optuna_direction:${optimized_mode}}      max -> maximize, min -> minimize (Optuna's words)

The stamp is cached per config like Hydra's `${now:}` (one value per run, and Hydra copies the
cache into every job of a multirun, so all agree on the sweep directory). The others are pure and
not cached: OmegaConf keys its cache on the argument's text (`${optimized_metric}`), not its value,
so a cached `default_mode` would miss a changed `optimized_metric`. Call `register_resolvers()` where the configs are registered, in every process that
composes or resolves a config: launcher plugins start jobs in new processes that import train.py.
"""

from __future__ import annotations

from cyclegan.config.run_identity import unique_stamp
from cyclegan.evaluation.ranking import default_metric, metric_mode


def _optuna_direction(mode: str) -> str:
    if mode not in ("max", "min"):
        raise ValueError(f"optimized_mode={mode}: use max or min")
    return "maximize" if mode == "max" else "minimize"


CACHED = {"stamp"}
RESOLVERS = {
    "stamp": unique_stamp,
    "default_metric": default_metric,
    "default_mode": metric_mode,  # min where lower is better, else max
    "optuna_direction": _optuna_direction,
}


def register_resolvers() -> None:
    """Register every resolver above with OmegaConf (again is a no-op)."""
    from omegaconf import OmegaConf

    for name, resolver in RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver, use_cache=name in CACHED)
