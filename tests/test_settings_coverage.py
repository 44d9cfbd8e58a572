"""No key is silently ignored: every setting of every method changes what that method trains.

For each method, every leaf of its composed `model`, `loss` and `method` groups is set to a valid
non-default value (`VARIANTS`: the value, and the context a key needs to be read, e.g.
`model.n_layers_D` with the n_layers discriminator), the method is built by the ordinary builder
and trains three steps on a fixed batch; its losses or its weights must differ from the same run
without the change. Three steps, so a replay buffer of size 1 is read back (step 2 or 3).

A key this file does not know fails `test_every_key_is_covered`: a new option needs its row here.
Trainer keys are about cadence, logging, paths and execution, which one step does not show: each is
listed in `TRAINER_COVERAGE` with the test that checks it reaches what it names, and that test
must exist.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import torch
from omegaconf import OmegaConf

from cyclegan.config.compose import compose_config
from cyclegan.runtime.strategy import SingleProcess
from cyclegan.training.builder import build_method
from cyclegan.training.command_line import preflight
from cyclegan.training.validation import validate

from .conftest import TINY

METHODS = ("cyclegan", "cut", "fastcut")
GROUPS = ("model", "loss", "method")
UNET = ["model.generator=unet_128", "dataset.img_size=128", "model.ngf=2"]

# key -> (a valid non-default value, the overrides under which the key is read)
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "model.generator": ("paper", []),
    "model.discriminator": ("basic", []),
    "model.n_residual_blocks": ("2", []),
    "model.n_layers_D": ("2", ["model.discriminator=n_layers"]),
    "model.ngf": ("4", []),
    "model.ndf": ("4", []),
    "model.norm": ("none", []),
    "model.use_dropout": ("true", UNET),
    "model.spectral_norm": ("true", []),
    "model.init_type": ("kaiming", []),
    "model.init_gain": ("0.05", []),
    "loss.gan_mode": ("hinge", []),
    "loss.lambda_gp": ("5.0", ["loss.gan_mode=wgangp"]),
    "loss.lambda_r1": ("1.0", []),
    "loss.lambda_r2": ("1.0", []),
    "loss.reg_every": ("2", ["loss.lambda_r1=1.0"]),  # steps 0, 2 at 2x instead of every step
    "loss.lambda_cyc": ("3.0", []),
    "loss.lambda_id": ("0.0", []),
    "loss.lambda_GAN": ("2.0", []),
    "loss.lambda_NCE": ("3.0", []),
    "loss.nce_idt": ("false", []),
    "method.buffer_size": ("1", []),
    "method.flip_equivariance": ("true", []),
    "method.nce_layers": ("[0,4,8]", []),
    "method.num_patches": ("8", []),
    "method.nce_T": ("0.2", []),
    "method.netF_nc": ("16", []),
    "method.all_negatives_from_minibatch": ("true", []),
}
# Where a method's default differs (FastCUT's presets) or its networks need another context.
METHOD_VALUE = {
    ("fastcut", "loss.nce_idt"): "true",
    ("fastcut", "method.flip_equivariance"): "false",
}
METHOD_CONTEXT = {(m, "model.norm"): ["model=resnet"] for m in ("cut", "fastcut")}  # CUT's: IN only
# Keys a method composes but never reads: setting one is refused (CUT cannot use a U-Net).
REFUSED = {
    (m, "model.use_dropout"): "model.generator=cut has no dropout" for m in ("cut", "fastcut")
}

# Trainer keys: the test that checks each reaches what it names (module::function).
TRAINER_COVERAGE = {
    "device": "test_trainer_options::test_device_reaches_the_batches",
    "batch_size": "test_trainer_options::test_batch_size_reaches_the_loader",
    "num_workers": "test_trainer_options::test_num_workers_reaches_the_loader",
    "steps_per_epoch": "test_train::test_few_step_run_writes_every_output",
    "log_every": "test_trainer_options::test_log_every_sets_the_rows",
    "sample_every": "test_train::test_few_step_run_writes_every_output",
    "checkpoint_every": "test_resume::test_retention_keeps_last_k_plus_last_and_best",
    "checkpoint_unit": "test_resume::test_retention_keeps_last_k_plus_last_and_best",
    "keep_last": "test_resume::test_retention_keeps_last_k_plus_last_and_best",
    "eval_every": "test_trainer_options::test_eval_every_sets_the_evaluations",
    "eval_fid": "test_evaluation::test_training_logs_fid_and_tracks_best_and_final",
    "inception_weights": "test_preflight::test_inception_problem_checks_file_cache_then_fetches_once",
    "feature_extractor": "test_evaluation::test_training_logs_fid_and_tracks_best_and_final",
    "n_samples": "test_trainer_options::test_n_samples_sets_the_grid_width",
    "ema_decay": "test_ema::test_ema_decay_reaches_evaluation_samples_and_checkpoint",
    "ema_warmup": "test_ema::test_ema_warmup_ramps_the_first_updates",
    "eval_raw": "test_ema::test_ema_decay_reaches_evaluation_samples_and_checkpoint",
    "progress": "test_trainer_options::test_progress_turns_the_bar_on_and_off",
    "precision": "test_trainer::test_mixed_precision_trains_close_to_fp32",
    "compile": "test_trainer::test_compiled_step_agrees_with_eager",
    "compile_mode": "test_trainer_options::test_compile_mode_reaches_torch_compile",
    "cuda_graphs": "test_cuda_graphs::test_config_refuses_cuda_graphs_where_they_cannot_run",
    "device_cache": "test_device_cache::test_training_with_the_device_cache_equals_training_without",
    "channels_last": "test_trainer::test_channels_last_matches_the_default_layout",
    "activation_checkpointing": (
        "test_trainer_options::test_activation_checkpointing_reaches_every_methods_blocks"
    ),
    "cudnn_benchmark": "test_trainer_options::test_cudnn_benchmark_is_set_on_cuda_only",
    "strategy": "test_distributed::test_strategy_resolution",
}


def leaves(node: Any, prefix: str) -> list[str]:
    """Dotted keys of a group's leaves (`_target_` is the class, not a setting)."""
    if isinstance(node, dict):
        return [
            k for key, v in node.items() if key != "_target_" for k in leaves(v, f"{prefix}.{key}")
        ]
    return [prefix]


def method_keys(method: str) -> list[str]:
    cfg = compose_config([*TINY, f"method={method}"])
    return [k for g in GROUPS for k in leaves(OmegaConf.to_container(cfg[g], resolve=True), g)]


CASES = [(m, k) for m in METHODS for k in method_keys(m)]


def run(overrides: list[str]) -> tuple[list[dict[str, float]], dict[str, torch.Tensor]]:
    """Three steps of the method these overrides configure, on a fixed batch of two images."""
    cfg = compose_config(["paths.data_dir=unused", *TINY, *overrides])
    validate(cfg)
    torch.manual_seed(0)
    method = build_method(cfg, torch.device("cpu"), SingleProcess())
    method.start(steps_per_epoch=3)
    size = cfg.dataset.img_size
    g = torch.Generator().manual_seed(1)
    batch = {k: torch.rand(2, 3, size, size, generator=g) * 2 - 1 for k in "AB"}
    losses = []
    for _ in range(3):
        losses.append({k: float(v) for k, v in method.training_step(batch).items()})
        method.after_step()
    return losses, {k: v.detach().clone() for k, v in method.model.state_dict().items()}


def differ(a: tuple, b: tuple) -> bool:
    (losses_a, weights_a), (losses_b, weights_b) = a, b
    if losses_a != losses_b or weights_a.keys() != weights_b.keys():
        return True
    return any(
        w.shape != weights_b[k].shape or not torch.equal(w, weights_b[k])
        for k, w in weights_a.items()
    )


def test_every_key_is_covered() -> None:
    unknown = sorted({k for _, k in CASES} - set(VARIANTS))
    assert not unknown, f"keys without a row in VARIANTS (add one): {unknown}"
    trainer = compose_config().trainer
    assert set(trainer) == set(TRAINER_COVERAGE), "a trainer key without its covering test"


@pytest.mark.parametrize("key", sorted(TRAINER_COVERAGE))
def test_trainer_keys_name_an_existing_test(key: str) -> None:
    module, function = TRAINER_COVERAGE[key].split("::")
    assert callable(getattr(importlib.import_module(f"tests.{module}"), function, None)), key


@pytest.mark.parametrize(("method", "key"), CASES, ids=[f"{m}-{k}" for m, k in CASES])
def test_setting_changes_what_the_method_trains(method: str, key: str) -> None:
    value, context = VARIANTS[key]
    value = METHOD_VALUE.get((method, key), value)
    if (method, key) in REFUSED:  # in the method's own context
        problem = preflight([*TINY, f"method={method}", f"{key}={value}"])
        assert problem is not None and REFUSED[method, key] in problem and "\n" not in problem
        return
    context = [f"method={method}", *context, *METHOD_CONTEXT.get((method, key), [])]
    changed = run([*context, f"{key}={value}"])
    assert differ(run(context), changed), f"{key}={value} changed nothing for method={method}"
