"""Load a trained generator from any file people have: ours, exported, PyTorch-GAN's or the official one.

Four formats, told apart by their keys (or forced with `fmt=`):

* ``checkpoint``: our training state, ``checkpoints/last.pt``: the file records what trained it
  (`cyclegan.checkpoints.record`: the method, and for each direction its generator's module and
  architecture), so CycleGAN's G_AB/G_BA and CUT's one-sided G are rebuilt from that record.
* ``exported``: ``python -m cyclegan.export``'s ``G_AB.safetensors`` + ``G_AB.json``.
* ``pytorch-gan``: PyTorch-GAN's ``G_AB_<epoch>.pth`` (residual blocks under ``block.``).
* ``official``: junyanz/pytorch-CycleGAN-and-pix2pix's ``latest_net_G_A.pth`` and the released
  pretrained models (residual blocks under ``conv_block.``), and its U-Net generators
  (``unet_128``/``unet_256``: nested ``model.model.1.model.3...`` keys; depth, width and norm are
  read off the keys, see `cyclegan.parts.networks.unet.infer_unet_spec`).
* ``cut``: taesungp/contrastive-unpaired-translation's ``latest_net_G.pth`` (CUT/FastCUT, and its
  released models): anti-aliased, told apart by its blur-filter buffers (``model.7.filt``, ...).

CUT models (ours, trained with method=cut/fastcut, and the reference's) are one-sided: they hold
the A -> B generator only, and asking for B -> A is a one-line error. Only foreign files (and bare
state dicts of our network containers) are told apart by their keys.

None of the foreign formats records its hyper-parameters, so the architecture is read off the keys
and shapes: ``model.1.weight`` is (ngf, input channels, 7, 7), the last 7x7 conv is (output
channels, ngf, 7, 7) (1 for models trained with ``--input_nc 1``/``--output_nc 1``), and the residual
blocks are counted. The
generator is then built and loaded with ``strict=True``, so every tensor lands in its layer or the
load fails. Two quirks of real files are undone first: the ``module.`` prefix of DataParallel (and
``_orig_mod.`` of ``torch.compile``), and the InstanceNorm running-stat keys of checkpoints saved
before PyTorch 0.4, which the official loader drops in the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cyclegan.checkpoints.file import CheckpointError, load_checkpoint
from cyclegan.checkpoints.record import trained_by
from cyclegan.errors import parse_choice
from cyclegan.inference.cut_weights import cut_generator_spec, fit_filters
from cyclegan.inference.resnet_layout import BLOCK_ATTR, BLOCK_KEY, infer_spec, io_channels
from cyclegan.inference.weights_file import (
    drop_legacy_norm_keys,
    load_state,
    strip_wrapper_prefixes,
    tensors_of,
)
from cyclegan.parts.networks.spec import UPSAMPLING, GeneratorSpec
from cyclegan.parts.networks.unet import is_unet_state_dict

EXPORT_FORMAT = "cyclegan-generator"  # the "format" field of an exported generator's JSON


class Format(StrEnum):
    checkpoint = "checkpoint"
    exported = "exported"
    pytorch_gan = "pytorch-gan"
    official = "official"
    cut = "cut"


class Weights(StrEnum):
    """`weights=` of translate/export/evaluate: which of a training checkpoint's generators."""

    auto = "auto"  # the average when the file keeps one (trainer.ema_decay > 0), else the trained
    ema = "ema"  # the exponential moving average of the generators' weights
    raw = "raw"  # the trained weights (the last optimizer step's)


class Direction(StrEnum):
    AtoB = "AtoB"
    BtoA = "BtoA"

    @property
    def container_key(self) -> str:
        """The generator's name in the CycleGAN container (and in exported file names)."""
        return "G_AB" if self is Direction.AtoB else "G_BA"


@dataclass
class WeightsFile:
    """The tensors of a weights file, read once, with what the file says about itself."""

    path: Path
    format: Format
    tensors: dict[str, torch.Tensor]
    # From our own files: the architecture, the direction(s) held, the training config.
    spec: GeneratorSpec | None = None
    directions: tuple[Direction, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)
    one_sided: bool = False  # a CUT model: A -> B only
    # Our checkpoints: direction -> (the container's module, its generator's architecture).
    translators: dict[Direction, tuple[str, GeneratorSpec]] = field(default_factory=dict)
    weights: Weights = Weights.raw  # which weights `tensors` are: the average (ema) or not


@dataclass
class LoadedGenerator:
    """A ready generator (eval mode, on CPU) and how it was obtained, for logs and export."""

    generator: nn.Module  # Generator, UnetGenerator or CUTResnetGenerator
    spec: GeneratorSpec
    format: Format
    direction: Direction | None  # None: a foreign file, which does not say
    source: Path
    dropped_keys: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    weights: Weights = Weights.raw  # the generators' average (ema) or the trained weights


# ---------------------------------------------------------------------------------- reading


def read_weights(
    path: str | Path, fmt: str | Format = "auto", weights: str | Weights = "auto"
) -> WeightsFile:
    """Read a weights file of any supported format (detected from its keys unless `fmt` is given).
    `weights`: a training checkpoint's averaged generators (ema; auto: when it keeps them) or its
    trained ones (raw); a file that does not hold the weights asked for is a one-line error."""
    wanted = parse_choice(Weights, weights, "weights")
    file = _read(Path(path), fmt, wanted)
    require_weights(wanted, file.weights, file.path)
    return file


def require_weights(wanted: str | Weights, held: Weights, path: Path) -> None:
    """One line when a file does not hold the weights asked for (`weights=ema` of a checkpoint
    trained without an average, `weights=raw` of an export of the average)."""
    if parse_choice(Weights, wanted, "weights") in (Weights.auto, held):
        return
    what = (
        "the generators' average only (an export of weights=ema)"
        if held is Weights.ema
        else "no generator average (trained with trainer.ema_decay=0, or not by train.py)"
    )
    raise CheckpointError(
        f"weights={wanted}: '{path}' holds {what}; use weights={held} or drop weights="
    )


def _read(path: Path, fmt: str | Format, wanted: Weights) -> WeightsFile:
    if not path.is_file():
        raise FileNotFoundError(f"weights file '{path}' not found; check the ckpt= path")
    forced = None if fmt == "auto" else Format(fmt)
    if forced is Format.exported or (forced is None and path.suffix == ".safetensors"):
        return _read_exported(path)
    state = load_state(path, "give a .pt/.pth/.safetensors generator file")
    ours = "format_version" in state and "model" in state  # our training checkpoint
    tensors = {} if ours else tensors_of(state)
    container = any(k.startswith(("G_AB.", "G_BA.")) for k in tensors)  # a bare CycleGAN one
    if forced is not None and (forced is Format.checkpoint) != (ours or container):
        what = "a training checkpoint of this project" if ours or container else "a foreign file"
        raise CheckpointError(
            f"format={forced} does not fit '{path}': it is {what}; drop format= "
            "(the format is detected from the keys)"
        )
    if ours:
        state = load_checkpoint(path)  # the one reader of training state (format-version check)
        return _from_checkpoint(path, state, wanted)
    if container:
        translators = {
            d: (d.container_key, infer_spec(_under(tensors, d.container_key))) for d in Direction
        }
        return WeightsFile(
            path, Format.checkpoint, tensors, None, tuple(Direction), translators=translators
        )
    detected = forced or _detect_foreign_format(path, tensors)
    if detected is Format.cut:  # CUT's G translates A -> B
        return WeightsFile(path, detected, tensors, None, (Direction.AtoB,), one_sided=True)
    return WeightsFile(path, detected, tensors)


def _under(tensors: Mapping[str, torch.Tensor], module: str) -> dict[str, torch.Tensor]:
    """The tensors of one module of a container (`G_AB.model.1.weight` -> `model.1.weight`)."""
    prefix = module + "."
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def _from_checkpoint(path: Path, state: Mapping[str, Any], wanted: Weights) -> WeightsFile:
    """Our checkpoint, rebuilt from its record of what trained it; its generators' average (the
    ``ema`` entry, under the container's keys) replaces their weights unless `wanted` is raw."""
    record = trained_by(state)
    if record is None:
        raise CheckpointError(
            f"'{path}' records neither the method that trained it nor its config; it cannot be "
            "rebuilt: use a checkpoint written by train.py"
        )
    translators = {
        Direction.AtoB if d == "AB" else Direction.BtoA: (
            str(t["module"]),
            GeneratorSpec.from_dict(t["generator"]),
        )
        for d, t in record.translators.items()
    }
    meta = {k: state[k] for k in ("config", "epoch", "step") if k in state}
    meta["method"] = record.name
    directions = tuple(translators)
    one_sided = Direction.BtoA not in translators
    averaged = state.get("ema") if wanted is not Weights.raw else None
    tensors = {**state["model"], **(averaged or {})}
    held = Weights.ema if averaged else Weights.raw
    return WeightsFile(
        path, Format.checkpoint, tensors, None, directions, meta, one_sided, translators, held
    )


def _read_exported(path: Path) -> WeightsFile:
    from safetensors import SafetensorError, safe_open  # only exported files need it

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
            header = f.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"'{path}' is not a readable safetensors file ({exc})") from exc
    sidecar = path.with_suffix(".json")
    if sidecar.is_file():
        info = json.loads(sidecar.read_text())
    elif EXPORT_FORMAT in header:  # the same JSON, embedded in the safetensors header
        info = json.loads(header[EXPORT_FORMAT])
    else:
        info = {}
    if info and info.get("format") != EXPORT_FORMAT:
        raise CheckpointError(
            f"'{sidecar}' is not a cyclegan export (format={info.get('format')!r}); "
            "re-export with python -m cyclegan.export"
        )
    spec = GeneratorSpec.from_dict(info["architecture"]) if "architecture" in info else None
    directions = (Direction(info["direction"]),) if info.get("direction") else ()
    held = Weights((info.get("source") or {}).get("weights", "raw"))
    return WeightsFile(path, Format.exported, tensors, spec, directions, info, weights=held)


def _detect_foreign_format(path: Path, tensors: Mapping[str, torch.Tensor]) -> Format:
    if any(k.endswith(".filt") for k in tensors):  # only CUT's networks have blur filters
        return Format.cut
    attrs = {m.group(2) for k in tensors if (m := BLOCK_KEY.match(k))}
    if attrs == {"block"}:
        return Format.pytorch_gan
    if attrs == {"conv_block"}:
        return Format.official
    if is_unet_state_dict(tensors):
        return Format.official
    if "model.0.weight" in tensors and "model.1.weight" not in tensors:
        raise CheckpointError(
            f"'{path}' looks like a discriminator (D_A/D_B); give a generator file "
            "(G_AB_<epoch>.pth, latest_net_G_A.pth, checkpoints/last.pt or an export)"
        )
    raise CheckpointError(
        f"cannot tell the format of '{path}' from its keys (first: {next(iter(tensors), 'none')}); "
        "give a CycleGAN generator file or force one with format=pytorch-gan|official"
    )


# ---------------------------------------------------------------------------------- building


# The ResNet layout each foreign format names, and how its residual blocks are keyed.
FORMAT_UPSAMPLING = {Format.pytorch_gan: "nearest", Format.official: "transposed"}


def _select_direction(
    weights: WeightsFile, direction: str | Direction | None
) -> tuple[dict[str, torch.Tensor], Direction | None]:
    wanted = Direction(direction) if direction is not None else None
    if weights.one_sided and wanted is Direction.BtoA:
        raise CheckpointError(
            f"'{weights.path}' is a one-sided CUT model: it translates A->B only, so "
            "direction=BtoA is not available; use direction=AtoB (or train CUT with A and B swapped)"
        )
    if weights.format is Format.checkpoint:
        chosen = wanted or Direction.AtoB
        module = weights.translators[chosen][0]
        tensors = _under(weights.tensors, module)
        if not tensors:
            raise CheckpointError(f"'{weights.path}' holds no {module} weights")
        return tensors, chosen
    held = weights.directions[0] if weights.directions else None
    if wanted is not None and held is not None and wanted is not held:
        raise CheckpointError(
            f"'{weights.path}' is the {held} generator but direction={wanted} was asked; "
            f"use the {wanted.container_key} export instead"
        )
    return dict(weights.tensors), held or wanted


def _fit_block_names(
    tensors: dict[str, torch.Tensor], spec: GeneratorSpec
) -> dict[str, torch.Tensor]:
    """Rename residual blocks to the attribute the chosen variant uses (for variant= overrides)."""
    want = BLOCK_ATTR[spec.upsampling]
    other = "block" if want == "conv_block" else "conv_block"
    pattern = re.compile(rf"^(model\.\d+\.){other}\.")
    return {pattern.sub(rf"\g<1>{want}.", k): v for k, v in tensors.items()}


def load_into_generator(
    weights: WeightsFile,
    direction: str | Direction | None = None,
    **overrides: Any,
) -> LoadedGenerator:
    """Our `Generator` holding the file's weights (strict load), in eval mode on the CPU.

    `direction` picks G_AB or G_BA from a checkpoint; single-generator files hold one already.
    `overrides` (ngf, n_residual_blocks, channels, out_channels, variant or upsampling) replace
    what the file says or what the keys imply. Channel counts otherwise come from the weights'
    first and last convolutions (e.g. an official model trained with `--input_nc 1`).
    """
    tensors, chosen = _select_direction(weights, direction)
    tensors = strip_wrapper_prefixes(tensors)
    if weights.format is Format.checkpoint and chosen is not None:
        spec = weights.translators[chosen][1]  # the record's architecture
        # Format-1 files record one channel count for the model (or channels_A/B, which this
        # generator uses one way or the other); the weights say exactly which, so they decide.
        in_channels, out_channels = io_channels(tensors)
        spec = replace(spec, channels=in_channels, out_channels=out_channels)
    elif weights.spec is not None:
        spec = weights.spec
    elif weights.format is Format.cut:
        spec = GeneratorSpec(**cut_generator_spec(tensors, weights.path))
    else:
        spec = infer_spec(tensors, FORMAT_UPSAMPLING.get(weights.format))
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if "variant" in overrides:
        overrides["upsampling"] = UPSAMPLING[str(overrides.pop("variant"))]
    if overrides:
        spec = replace(spec, **overrides)
        tensors = _fit_block_names(tensors, spec)
    generator = spec.build()
    if spec.upsampling == "antialias":  # CUT's constant blur filters: checked, filled if absent
        tensors = fit_filters(tensors, generator, weights.path)
    tensors, dropped = drop_legacy_norm_keys(tensors, generator)
    try:
        generator.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[1:2] or [str(exc)]
        raise CheckpointError(
            f"weights in '{weights.path}' do not fit a {spec.variant} generator with "
            f"{spec.details()}, {spec.channels} -> {spec.out_channels} channels: "
            f"{first[0].strip()[:200]}; "
            "check the file, or drop/adjust the format=/variant=/ngf=/n_residual_blocks= overrides"
        ) from None
    generator.eval()
    return LoadedGenerator(
        generator, spec, weights.format, chosen, weights.path, dropped, dict(weights.meta),
        weights.weights,
    )  # fmt: skip


def load_generator(
    path: str | Path,
    direction: str | Direction | None = None,
    fmt: str | Format = "auto",
    weights: str | Weights = "auto",
    **overrides: Any,
) -> LoadedGenerator:
    """`read_weights` + `load_into_generator`: the one call translate and evaluate make."""
    return load_into_generator(read_weights(path, fmt, weights), direction, **overrides)
