"""The evaluator a training run and `cyclegan.evaluate` call: paired metrics and FID/KID together."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from cyclegan.data.builders import TestImages
from cyclegan.evaluation.distribution import (
    GRAYSCALE_NOTE,
    DistributionMetrics,
    InceptionUnavailableError,
    extract_features,
    load_inception,
)
from cyclegan.evaluation.paired import PairedEvaluator, score
from cyclegan.evaluation.translation import translate_images

log = logging.getLogger(__name__)


class TranslationEvaluator:
    """What the trainer and `cyclegan.evaluate` call after (or during) training.

    eval/{psnr,ssim}_{AB,BA} against ground truth when `paired` is given (the built-in dataset), and
    eval/{fid,kid}_{AB,BA} against the real test images of the target domain when a feature
    `extractor` is given. `baselines` holds the paired baselines and the identity FID/KID.
    """

    def __init__(
        self,
        test_A: torch.Tensor,
        test_B: torch.Tensor,
        paired: PairedEvaluator | None = None,
        extractor: nn.Module | None = None,
        batch_size: int = 16,
        device: torch.device | str = "cpu",
        report_kid_std: bool = False,
    ) -> None:
        self.test = {"A": test_A, "B": test_B}  # (N, C, H, W) in [-1, 1]
        self.paired = paired
        self.extractor = extractor.to(device).eval() if extractor is not None else None
        self.batch_size = batch_size
        self.device = device
        self.report_kid_std = report_kid_std
        self.baselines: dict[str, float] = dict(paired.baselines) if paired else {}
        self.distribution: dict[str, DistributionMetrics] = {}
        if self.extractor is not None:
            real = {k: self.features(v) for k, v in self.test.items()}
            for direction, source, target in (("AB", "A", "B"), ("BA", "B", "A")):
                self.distribution[direction] = DistributionMetrics(real[target])
                identity = self.distribution[direction](real[source])
                for name in ("fid", "kid"):
                    self.baselines[f"baseline/identity/{name}_{direction}"] = identity[name]

    def features(self, images: torch.Tensor) -> torch.Tensor:
        assert self.extractor is not None
        return extract_features(self.extractor, images, self.batch_size, self.device)

    def __call__(self, G_AB: nn.Module | None, G_BA: nn.Module | None) -> dict[str, float]:
        """Metrics of the given generators (None skips that direction)."""
        results: dict[str, float] = {}
        for direction, G, source, target in (("AB", G_AB, "A", "B"), ("BA", G_BA, "B", "A")):
            if G is None:
                continue
            fake = translate_images(G, self.test[source], self.batch_size)
            if self.paired is not None:
                for metric, value in score(fake, self.test[target]).items():
                    results[f"eval/{metric}_{direction}"] = value
            if self.extractor is not None:
                values = self.distribution[direction](self.features(fake))
                if not self.report_kid_std:
                    values.pop("kid_std")
                for metric, value in values.items():
                    results[f"eval/{metric}_{direction}"] = value
        return results


def build_evaluator(
    test: TestImages,
    fid: bool,
    device: torch.device | str,
    inception_weights: str | Path | None = None,
    extractor: nn.Module | None = None,
) -> PairedEvaluator | TranslationEvaluator | None:
    """The training run's evaluator: PSNR/SSIM on a paired test split, plus FID/KID when `fid`.

    Without Inception weights (offline, nothing cached) this logs how to provide them and returns
    the paired evaluator alone, so training and its paired metrics go on.
    """
    paired = (
        PairedEvaluator(test.A, test.B, test.mean_A, test.mean_B)  # type: ignore[arg-type]
        if test.paired
        else None
    )
    if not fid:
        return paired
    if extractor is None:
        try:
            extractor = load_inception(inception_weights)
        except InceptionUnavailableError as exc:
            # Before training: the run goes on (its samples, paired metrics); say which key to set.
            log.warning(
                "%s; continuing without FID/KID (in a training config the key is "
                "trainer.inception_weights=)",
                exc,
            )
            return paired
    if 1 in (test.A.shape[1], test.B.shape[1]):
        log.info(GRAYSCALE_NOTE)
    return TranslationEvaluator(test.A, test.B, paired, extractor, device=device)
