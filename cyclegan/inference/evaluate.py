"""Evaluate trained generators on a dataset's test split: FID and KID, and PSNR/SSIM where paired.

    python -m cyclegan.evaluate ckpt=outputs/synthetic/<date>/checkpoints/last.pt
    python -m cyclegan.evaluate ckpt=exported/G_AB.safetensors data=data/horse2zebra img_size=256

A training checkpoint carries its dataset (root, image size, whether the test split is paired;
the built-in dataset is regenerated if it is missing); `data=` and `img_size=` override it and are
required for files that do not say (exports, PyTorch-GAN and official files). A file holding one
generator is evaluated in its direction only. Prints a table (model beside the baselines) and, with
`output=metrics.json`, writes every number. Without Inception weights (offline, nothing cached) it
says how to provide them and still reports the paired metrics.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from cyclegan.checkpoints.file import CheckpointError
from cyclegan.data.builders import load_test_images, prepare_dataset, synthetic_from_config
from cyclegan.data.folder import DatasetNotFoundError, UnreadableImageError
from cyclegan.data.spec import preprocessing_from_keys
from cyclegan.data.transforms import Preprocessing
from cyclegan.evaluation.distribution import (
    GRAYSCALE_NOTE,
    InceptionUnavailableError,
    load_inception,
)
from cyclegan.evaluation.evaluator import TranslationEvaluator
from cyclegan.evaluation.paired import PairedEvaluator
from cyclegan.evaluation.report import format_evaluation
from cyclegan.files import atomic_write
from cyclegan.inference.cli import boolean, run_command
from cyclegan.inference.importers import (
    Direction,
    Format,
    Weights,
    load_into_generator,
    read_weights,
)
from cyclegan.runtime.device import resolve_device

# Named, not __name__: under `python -m cyclegan.evaluate` that is "__main__", outside our handler.
log = logging.getLogger("cyclegan.evaluate")


def _dataset_config(
    config: dict[str, Any], data: str | None, img_size: int | None, paired: bool | None
) -> dict[str, Any]:
    """The dataset keys evaluation reads: from the checkpoint, overridden by flags."""
    from_ckpt = dict(config.get("dataset") or {}) if data is None else {}
    if data is None and not from_ckpt:
        raise ValueError("this file does not record its dataset; pass data=<dataset folder>")
    size = img_size or from_ckpt.get("img_size") or 256
    preprocessing = Preprocessing.legacy(size)
    if img_size is None and from_ckpt.get("preprocess"):  # the run's own evaluation images
        preprocessing = preprocessing_from_keys(
            from_ckpt["preprocess"],
            from_ckpt.get("load_size"),
            from_ckpt.get("crop_size"),
            False,
            size,
            from_ckpt.get("load_scale", 1.12),
        )
    return {
        "root": data or from_ckpt["root"],
        "img_size": size,
        "preprocessing": preprocessing,
        "paired_test": from_ckpt.get("paired_test", False) if paired is None else paired,
        "synthetic": synthetic_from_config(from_ckpt.get("synthetic")),
    }


def _domain_channels(generators: dict[str, Any]) -> tuple[int, int]:
    """(channels_A, channels_B) as the generators read and write them."""
    if generators["AtoB"] is not None:
        return generators["AtoB"].in_channels, generators["AtoB"].out_channels
    return generators["BtoA"].out_channels, generators["BtoA"].in_channels


def _load_generators(
    weights: Any,
    direction: str | None,
    device: torch.device,
    ckpt: str | Path,
    sides: tuple[int, ...],
) -> dict[str, Any]:
    """{"AtoB": G or None, "BtoA": G or None}: both directions of a training checkpoint (or the
    one asked for), the single generator of any other file. Refuses an `img_size` the generator
    cannot take (a U-Net's multiple of 128 or 256)."""
    if weights.format is Format.checkpoint:
        wanted = [Direction(direction)] if direction else list(weights.directions)  # CUT: AtoB
    else:
        wanted = [None]  # the one generator the file holds
    generators: dict[str, Any] = {"AtoB": None, "BtoA": None}
    for d in wanted:
        loaded = load_into_generator(weights, d if d is not None else direction)
        if loaded.direction is None:
            raise ValueError(
                f"'{ckpt}' does not say which direction its generator translates; pass direction="
            )
        multiple = loaded.spec.size_multiple
        for side in sorted(set(sides)):
            if side % multiple:
                raise ValueError(
                    f"a {loaded.spec.variant} generator needs img_size divisible by {multiple}, "
                    f"got {side}; pass img_size={max(multiple, side // multiple * multiple)}"
                )
        generators[str(loaded.direction)] = loaded.generator.to(device)
    return generators


def _feature_extractor(
    fid: bool, extractor: Any, inception_weights: str | None
) -> tuple[Any, str | None]:
    """(the FID/KID feature network or None, why it is missing)."""
    if not fid:
        return None, "fid=false"
    if extractor is not None:
        return extractor, None
    try:
        return load_inception(inception_weights), None
    except InceptionUnavailableError as exc:
        log.warning("%s; reporting the paired metrics only", exc)
        return None, str(exc)


def evaluate(
    ckpt: str | Path,
    data: str | None = None,
    img_size: int | None = None,
    paired: bool | None = None,
    direction: str | None = None,
    fid: bool = True,
    inception_weights: str | None = None,
    device: str = "auto",
    batch_size: int = 16,
    fmt: str = "auto",
    extractor: Any = None,
    averaged: str = "auto",
) -> dict[str, Any]:
    """Every metric of the generators in `ckpt` on the test split, plus baselines and provenance.

    `extractor` replaces the Inception network (any module: uint8 (B, 3, H, W) -> (B, D)).
    `averaged` (`weights=` on the command line): a training checkpoint's averaged generators
    (ema), its trained ones (raw), or auto (the average when it keeps one).
    """
    weights = read_weights(ckpt, fmt, averaged)
    dataset = _dataset_config(weights.meta.get("config") or {}, data, img_size, paired)
    dev = resolve_device(device)
    sides = dataset["preprocessing"].crop_size  # the evaluation images' (H, W)
    generators = _load_generators(weights, direction, dev, ckpt, sides)
    root = prepare_dataset(dataset["root"], dataset["synthetic"])  # regenerates the built-in set
    channels = _domain_channels(generators)
    test = load_test_images(root, dataset["preprocessing"], dataset["paired_test"], None, *channels)
    extractor, skipped = _feature_extractor(fid, extractor, inception_weights)
    if not test.paired and extractor is None:
        raise ValueError(
            f"nothing to report: the test split in '{root}' has no ground truth (paired=false) and "
            f"FID/KID are off or unavailable ({skipped})"
        )
    paired_eval = (
        PairedEvaluator(test.A, test.B, test.mean_A, test.mean_B, batch_size)
        if test.paired
        else None
    )
    evaluator = TranslationEvaluator(
        test.A, test.B, paired_eval, extractor, batch_size, dev, report_kid_std=True
    )
    metrics = evaluator(generators["AtoB"], generators["BtoA"])
    return {
        "ckpt": str(ckpt),
        "weights": str(weights.weights),  # ema | raw: which generators were scored
        "data": str(root),
        "img_size": dataset["img_size"],
        "paired": test.paired,
        "n_test": {"A": int(test.A.shape[0]), "B": int(test.B.shape[0])},
        "metrics": metrics,
        "baselines": evaluator.baselines,
        "fid_skipped": skipped if fid else None,
        "notes": [GRAYSCALE_NOTE] if extractor is not None and 1 in channels else [],
    }


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m cyclegan.evaluate",
        description="FID/KID (and PSNR/SSIM on paired test sets) of trained generators. "
        "Arguments as key=value (ckpt=... data=...) or --key value.",
    )
    p.add_argument("--ckpt", required=True, help="checkpoints/last.pt or a generator")
    p.add_argument(
        "--weights",
        choices=[w.value for w in Weights],
        default="auto",
        help="a training checkpoint's averaged generators (ema; auto: when it has them) or raw",
    )
    p.add_argument("--data", help="dataset folder (default: the checkpoint's dataset)")
    p.add_argument("--img-size", type=int, help="evaluation size (default: the checkpoint's)")
    p.add_argument("--paired", type=boolean, help="test split pairs A and B by file name")
    p.add_argument("--direction", choices=["AtoB", "BtoA"], help="only this direction")
    p.add_argument("--fid", type=boolean, default=True, help="FID and KID (default true)")
    p.add_argument("--inception-weights", help="path to the FID Inception weights file")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument(
        "--format", dest="fmt", default="auto", choices=["auto", *(f.value for f in Format)]
    )
    p.add_argument("--output", help="write all numbers to this JSON file")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: 0 on success, 2 on bad input."""
    return run_command(_build_parser(), _run, argv, USER_ERRORS)


USER_ERRORS = (
    CheckpointError,
    DatasetNotFoundError,
    UnreadableImageError,
    FileNotFoundError,
    ValueError,
)


def _run(args: argparse.Namespace) -> int:
    result = evaluate(
        args.ckpt,
        data=args.data,
        img_size=args.img_size,
        paired=args.paired,
        direction=args.direction,
        fid=args.fid,
        inception_weights=args.inception_weights,
        device=args.device,
        batch_size=args.batch_size,
        fmt=args.fmt,
        averaged=args.weights,
    )
    n = result["n_test"]
    print(
        f"{result['ckpt']} ({result['weights']} weights) on {result['data']} "
        f"(test: {n['A']} A, {n['B']} B, {result['img_size']} px)"
    )
    print(format_evaluation(result["metrics"], result["baselines"]))
    for note in result["notes"]:
        print(note)
    if args.output:
        output = Path(args.output)
        output.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(result, indent=2) + "\n"
        atomic_write(output, lambda tmp: tmp.write_text(text))  # an old file stays whole on error
        log.info("wrote %s", args.output)
    return 0
