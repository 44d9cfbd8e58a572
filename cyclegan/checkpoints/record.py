"""What trained a checkpoint: the method, its networks and its translators, read from the file.

Checkpoints of format 2 carry a record (`TrainingMethod.record()`): the method's name and class,
the `model` group's network spec, the domains' channels, and for each direction the container's
module that translates (``G_AB``, ``G``) with its generator's architecture. The inference tools and
resume build from it, never from the tensors' key prefixes.

Older files of this project (format 1: before methods owned their settings) carry their resolved
config instead; `upgrade_saved_config` maps its keys to today's (`trainer.buffer_size` is now
`method.buffer_size`, CUT's loss weights are the `loss` group's, ...) and `trained_by` reads the
same record off it: the method from `method._target_` (no method key: CycleGAN, the only one then).
Only foreign files (PyTorch-GAN's, the official code's, CUT's) are recognised by their keys, in
`cyclegan.inference.importers`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cyclegan.checkpoints.file import CheckpointError

CYCLEGAN_TARGET = "cyclegan.methods.cyclegan.CycleGAN"
CUT_TARGET = "cyclegan.methods.cut.CUT"

# Keys that moved or went away, by the method that had them.
_VARIANT_NETWORKS = {"resnet": ("resnet", "pytorch_gan"), "paper": ("paper", "basic")}
_GONE_FROM_MODEL = ("_target_", "channels", "channels_A", "channels_B")
_EXECUTION_KEYS = ("precision", "compile", "compile_mode", "cuda_graphs", "channels_last")
_CUT_LOSS_KEYS = ("lambda_GAN", "lambda_NCE", "nce_idt")
_LOSS_TARGETS = {
    "cyclegan": "cyclegan.parts.losses.cyclegan.CycleGANLoss",
    "cut": "cyclegan.parts.losses.cut.CUTLoss",
}


@dataclass(frozen=True)
class TrainedBy:
    """The record of a checkpoint: {"AB": {"module": "G_AB", "generator": {...}}, ...}."""

    name: str  # cyclegan | cut
    target: str  # the method's class
    networks: dict[str, Any]  # the model group's values
    channels: dict[str, int]  # {"A": 3, "B": 3}
    translators: dict[str, dict[str, Any]]

    def describe(self) -> str:
        return f"method={self.name}"


def method_name(target: str) -> str:
    """`cyclegan.methods.cut.CUT` -> cut (the record's name for a method class)."""
    return target.rsplit(".", 1)[-1].lower()


def upgrade_saved_config(saved: Any) -> dict[str, Any]:
    """A checkpoint's saved config in today's keys, so resuming compares like with like and the
    tools read old files: `model.variant` -> `model.generator` + `model.discriminator`,
    `model.init_std` -> `model.init_gain`; `trainer.buffer_size` -> `method.buffer_size`; CUT's
    `method.lambda_GAN/lambda_NCE/nce_idt` -> `loss.*`; the trainer values the method group used to
    repeat (precision, compile, ...) and the model's channel keys dropped (the dataset has them)."""
    config = copy.deepcopy(dict(saved or {}))
    if not config:
        return config
    model = dict(config.get("model") or {})
    if "variant" in model:
        generator, discriminator = _VARIANT_NETWORKS[str(model.pop("variant"))]
        model.setdefault("generator", generator)
        model.setdefault("discriminator", discriminator)
    if "init_std" in model:
        model.setdefault("init_gain", model.pop("init_std"))
    for key in _GONE_FROM_MODEL:
        model.pop(key, None)
    if model:
        config["model"] = model
    trainer = dict(config.get("trainer") or {})
    method = dict(config.get("method") or {"_target_": CYCLEGAN_TARGET})
    name = method_name(str(method.get("_target_", CYCLEGAN_TARGET)))
    for key in (*_EXECUTION_KEYS, "init_gain"):
        method.pop(key, None)
    loss = dict(config.get("loss") or {})
    if name == "cyclegan" and "buffer_size" in trainer:
        method.setdefault("buffer_size", trainer.pop("buffer_size"))
    if name == "cut":
        trainer.pop("buffer_size", None)
        loss = {k: v for k, v in loss.items() if k not in ("lambda_cyc", "lambda_id")}
        loss.update({k: method.pop(k) for k in _CUT_LOSS_KEYS if k in method})
    if loss and name in _LOSS_TARGETS:
        loss["_target_"] = _LOSS_TARGETS[name]
    config.update({"method": method, "trainer": trainer} | ({"loss": loss} if loss else {}))
    return config


def trained_by(state: Mapping[str, Any]) -> TrainedBy | None:
    """The checkpoint's record, or one read off the saved config of an older file; None when
    the file has neither (a bare state dict)."""
    record = state.get("method")
    if isinstance(record, Mapping) and "translators" in record:
        return TrainedBy(
            name=str(record["name"]),
            target=str(record["target"]),
            networks=dict(record["networks"]),
            channels={k: int(v) for k, v in record["channels"].items()},
            translators={k: dict(v) for k, v in record["translators"].items()},
        )
    config = state.get("config")
    if not isinstance(config, Mapping) or not isinstance(config.get("model"), Mapping):
        return None
    return _from_config(config)


def _from_config(saved: Mapping[str, Any]) -> TrainedBy:
    """The record of a format-1 checkpoint, from its resolved config."""
    model = saved["model"]
    config = upgrade_saved_config(saved)
    target = str(config["method"].get("_target_", CYCLEGAN_TARGET))
    name = method_name(target)
    dataset = saved.get("dataset") or {}
    channels = {
        d: int(
            model.get(f"channels_{d}") or dataset.get(f"channels_{d}") or model.get("channels", 3)
        )
        for d in "AB"
    }
    networks = dict(config["model"])

    def generator(src: str, dst: str) -> dict[str, Any]:
        return {**networks, "in_channels": channels[src], "out_channels": channels[dst]}

    if name == "cut":
        translators = {"AB": {"module": "G", "generator": generator("A", "B")}}
    else:
        translators = {
            "AB": {"module": "G_AB", "generator": generator("A", "B")},
            "BA": {"module": "G_BA", "generator": generator("B", "A")},
        }
    return TrainedBy(name, target, networks, channels, translators)


def check_same_method(state: Mapping[str, Any], method: Any, path: Any) -> None:
    """Refuse, in one line, a resume of a checkpoint another method trained: its networks,
    optimizers and per-step state are another algorithm's."""
    record = trained_by(state)
    if record is not None and record.name != method.name:
        raise CheckpointError(
            f"cannot resume from '{path}': it was trained by method={record.name}, this run is "
            f"method={method.name}; resume with method={record.name} or start a new run"
        )
