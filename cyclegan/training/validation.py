"""Everything checked before a run does any work: the shared groups' values, the method's own
settings against its code, and that the run will report the metric it optimizes.

One entry, `validate(cfg)`, used by `train(cfg)` and by the command-line preflight, so a bad value
is refused in one line whether it comes from the command line, a preset or Python.
"""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

from cyclegan.config.checks import check_shared
from cyclegan.errors import SettingKeyError
from cyclegan.evaluation.ranking import fid_enabled
from cyclegan.methods.base import TrainingMethod
from cyclegan.methods.settings import check_method
from cyclegan.parts.networks.spec import NetworkSpec

EVAL_METRICS = ("psnr", "ssim", "fid", "kid")
RUN_KEYS = ("time/train_s", "epoch", "step", "data/skipped_images")


def validate(cfg: Any) -> type[TrainingMethod]:
    """Refuse unusable settings in one line naming the key and the fix; returns the method class."""
    check_shared(cfg)
    spec = network_spec(cfg)
    method = check_method(
        OmegaConf.to_container(cfg.method, resolve=True),  # type: ignore[arg-type]
        OmegaConf.to_container(cfg.loss, resolve=True),  # type: ignore[arg-type]
        spec,
        (cfg.dataset.channels_A, cfg.dataset.channels_B),
        cfg.dataset.img_size,
        cfg.trainer,
    )
    check_optimized_metric(str(cfg.optimized_metric), method)
    return method


def network_spec(cfg: Any) -> NetworkSpec:
    """The model group as a `NetworkSpec` (typed by the schema, so values are already checked)."""
    spec = OmegaConf.to_object(cfg.model)
    if not isinstance(spec, NetworkSpec):  # a config composed without the schema
        spec = NetworkSpec(**spec)  # type: ignore[arg-type]
    return spec


def summary_keys(method: type[TrainingMethod]) -> list[str]:
    """Every summary key a run of `method` can report: what optimized_metric may name."""
    evaluated = [f"{m}_{d}" for m in EVAL_METRICS for d in method.directions]
    baselines = [f"baseline/{b}/{m}_{d}" for b in ("identity", "mean") for m in EVAL_METRICS[:2]
                 for d in ("AB", "BA")]  # fmt: skip
    return [
        *(f"eval/{k}" for k in evaluated),
        *(f"best/{k}" for k in evaluated),
        *(f"final/train/{name}" for name in (*method.loss_names, "lr")),
        *baselines,
        *RUN_KEYS,
    ]


def check_optimized_metric(metric: str, method: type[TrainingMethod]) -> None:
    """One line, before training, when optimized_metric names no key the run reports (a sweeper
    or best.pt would rank nothing). Whether an existing metric is computed on this dataset
    (PSNR needs a paired test set, FID/KID the Inception weights) is `metric_problem`'s."""
    keys = summary_keys(method)
    if metric not in keys:
        evaluated = ", ".join(k for k in keys if k.startswith("eval/"))
        raise SettingKeyError(
            f"optimized_metric={metric} is not a metric method={method.name} reports; use one of "
            f"{evaluated} (or best/..., final/train/<loss>: {', '.join(method.loss_names)})"
        )


def unused_settings(cfg: Any) -> dict[str, str]:
    """{key: why} for the settings this configuration does not read, e.g. `model.n_layers_D` with
    the seed's discriminator, `loss.lambda_gp` without wgangp or `loss.reg_every` without R1/R2:
    setting one on the command line is refused (a comparison over it would compare identical
    runs)."""
    unused = {f"model.{k}": why for k, why in network_spec(cfg).unused_settings().items()}
    if "gan_mode" in cfg.loss and str(cfg.loss.gan_mode) != "wgangp":
        unused["loss.lambda_gp"] = f"loss.gan_mode={cfg.loss.gan_mode} has no gradient penalty"
    if "reg_every" in cfg.loss and not (cfg.loss.lambda_r1 or cfg.loss.lambda_r2):
        unused["loss.reg_every"] = "loss.lambda_r1 and loss.lambda_r2 are 0 (no R1/R2 penalty)"
    if not cfg.trainer.ema_decay:
        unused["trainer.ema_warmup"] = "trainer.ema_decay=0 keeps no generator average"
        unused["trainer.eval_raw"] = "trainer.ema_decay=0 scores the trained generators already"
    if not cfg.trainer.compile:
        unused["trainer.compile_mode"] = "it is torch.compile's mode and trainer.compile=false"
    if str(cfg.schedule.policy) == "constant":
        unused["schedule.decay_epoch"] = "schedule=constant never decays"
    if not fid_enabled(cfg.trainer.eval_fid, cfg.dataset.paired_test):
        why = "FID/KID are off (trainer.eval_fid)"
        unused |= {"trainer.inception_weights": why, "trainer.feature_extractor": why}
    return unused
