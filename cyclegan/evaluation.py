"""FID and KID of translated images (torchmetrics), beside the paired PSNR/SSIM of `cyclegan.metrics`.

FID and KID compare the distribution of G_AB(test A) with the real test B images (and G_BA(test B)
with test A) in the feature space of an image network, so they need no ground truth and work on
every dataset. The features come from the FID Inception network (torchmetrics / torch-fidelity),
whose weights are downloaded on first use into the torch hub cache; any other `nn.Module` mapping
uint8 images (B, 3, H, W) to features (B, D) can be passed instead (the tests pass a small one).

Each image's features are extracted once and fed to torchmetrics' FID and KID, the real sets' only
once per run. Both metrics are lower-is-better. With tens of test images FID is strongly biased
upwards (its 2048 x 2048 covariance is estimated from few samples): compare FIDs only at equal image
counts, and prefer KID, which is unbiased, on small sets. The "identity" baseline (the untranslated
input against the target domain) gives the scale a model should beat.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from cyclegan.data.folder import ImageFolderDataset, find_split_dirs
from cyclegan.data.transforms import eval_transform
from cyclegan.metrics import PairedEvaluator, format_report, score

log = logging.getLogger(__name__)

# torch-fidelity's port of the TF FID Inception, the network FID numbers in papers use.
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_URL = (
    f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{INCEPTION_FILE}"
)
LOWER_IS_BETTER = ("fid", "kid")


class InceptionUnavailableError(RuntimeError):
    """The Inception weights are neither cached nor downloadable (offline), or torch-fidelity is missing."""


def lower_is_better(key: str) -> bool:
    """`eval/fid_AB`, `eval/kid_BA`: lower is better; PSNR/SSIM and the rest: higher is better."""
    return key.rsplit("/", 1)[-1].startswith(LOWER_IS_BETTER)


def inception_cache_path() -> Path:
    """Where the weights are cached (and looked for): `$TORCH_HOME/hub/checkpoints/`."""
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE


def _offline_help(reason: str) -> str:
    cache = inception_cache_path()
    return (
        f"FID/KID need the Inception weights ({reason}). On a machine with internet, download "
        f"{INCEPTION_URL} and copy it to {cache} (or pass inception_weights=/path/to/{INCEPTION_FILE})"
    )


def load_inception(weights: str | Path | None = None) -> nn.Module:
    """The FID Inception (2048-d pool features) from `weights`, the cache, or downloaded into it.

    Raises InceptionUnavailableError with how to provide the weights when none can be had.
    """
    if weights is not None and not Path(weights).is_file():
        raise InceptionUnavailableError(_offline_help(f"'{weights}' not found"))
    path = Path(weights) if weights is not None else inception_cache_path()
    try:
        from torchmetrics.image.fid import NoTrainInceptionV3
    except ImportError as exc:
        raise InceptionUnavailableError(
            f"FID/KID need torchmetrics with its image extra ({exc}); pip install 'torchmetrics[image]'"
        ) from exc
    try:
        model = NoTrainInceptionV3(
            name="inception-v3-compat",
            features_list=["2048"],
            feature_extractor_weights_path=str(path) if path.is_file() else None,
        )
    except ModuleNotFoundError as exc:  # torch-fidelity, which holds the network definition
        raise InceptionUnavailableError(
            f"FID/KID need torch-fidelity ({exc}); pip install 'torchmetrics[image]'"
        ) from exc
    except OSError as exc:  # URLError (offline), a half-written cache file, ...
        raise InceptionUnavailableError(_offline_help(f"download failed: {exc}")) from exc
    model.num_features = 2048  # saves torchmetrics a dummy forward pass to find it out
    return model


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float (B, C, H, W) -> uint8 RGB, what the Inception network was trained on."""
    x = ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


class _Features(nn.Module):
    """Hands precomputed features to torchmetrics, so each image goes through the network once."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


class DistributionMetrics:
    """FID and KID of feature sets against one fixed real feature set (torchmetrics' estimators).

    KID averages the unbiased MMD^2 over `kid_subsets` random subsets of `kid_subset_size` (capped
    at the smaller set); the subsets are drawn from a fixed seed in a forked RNG, so the value is
    reproducible and computing it never shifts a training run's random stream.
    """

    def __init__(
        self, real: torch.Tensor, kid_subsets: int = 100, kid_subset_size: int = 1000
    ) -> None:
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.kid import KernelInceptionDistance

        if real.dim() != 2 or real.shape[0] < 2:
            raise ValueError(
                f"need >= 2 real feature vectors (N, D), got shape {tuple(real.shape)}"
            )
        features = _Features(real.shape[1])
        self.n_real = real.shape[0]
        self.kid_subsets, self.kid_subset_size = kid_subsets, kid_subset_size
        self.fid = FrechetInceptionDistance(feature=features, reset_real_features=False)
        self.fid.update(real, real=True)
        with warnings.catch_warnings():  # "KID keeps all features in memory": ours are small
            warnings.simplefilter("ignore", UserWarning)
            self.kid = KernelInceptionDistance(
                feature=features, reset_real_features=False, subsets=kid_subsets
            )
        self.kid.update(real, real=True)

    def __call__(self, fake: torch.Tensor) -> dict[str, float]:
        """{"fid", "kid", "kid_std"} of `fake` (N, D) against the real features."""
        if fake.shape[0] < 2:
            raise ValueError(f"need >= 2 generated feature vectors, got {fake.shape[0]}")
        self.fid.reset()
        self.kid.reset()
        self.fid.update(fake, real=False)
        self.kid.update(fake, real=False)
        size = min(self.kid_subset_size, self.n_real, fake.shape[0])
        self.kid.subset_size = size
        # Subsets as large as both sets are all the same set: one gives the value (std 0).
        self.kid.subsets = 1 if size == self.n_real == fake.shape[0] else self.kid_subsets
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            kid, kid_std = self.kid.compute()
        return {"fid": float(self.fid.compute()), "kid": float(kid), "kid_std": float(kid_std)}


@torch.no_grad()
def extract_features(
    extractor: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Features (N, D) on the CPU of [-1, 1] images (N, C, H, W), in batches on `device`."""
    out = [
        extractor(to_uint8(chunk).to(device)).reshape(chunk.shape[0], -1).double().cpu()
        for chunk in images.split(batch_size)
    ]
    return torch.cat(out)


@torch.no_grad()
def translate_images(generator: nn.Module, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """G(images) in eval mode (restored after), in batches, on the CPU."""
    device = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    try:
        out = [generator(chunk.to(device)).float().cpu() for chunk in images.split(batch_size)]
    finally:
        generator.train(was_training)
    return torch.cat(out)


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


def load_split_images(root: Path, img_size: int, split: str = "test") -> tuple[torch.Tensor, ...]:
    """All images of a split's two domains, resized and centre-cropped, in [-1, 1]."""
    try:
        dir_A, dir_B = find_split_dirs(root, split)
    except FileNotFoundError:
        log.warning("no '%s' split in '%s': FID/KID use the train split", split, root)
        dir_A, dir_B = find_split_dirs(root, "train")
    transform = eval_transform(img_size)
    stacks = []
    for folder in (dir_A, dir_B):
        data = ImageFolderDataset(folder, transform)
        stacks.append(torch.stack([data[i] for i in range(len(data))]))
    return tuple(stacks)


def with_distribution_metrics(
    paired: PairedEvaluator | None,
    root: Path,
    img_size: int,
    device: torch.device | str,
    inception_weights: str | Path | None = None,
    extractor: nn.Module | None = None,
) -> PairedEvaluator | TranslationEvaluator | None:
    """The training run's evaluator with FID/KID added (`trainer.eval_fid=true`).

    Without Inception weights (offline, nothing cached) this logs how to provide them and returns
    the paired evaluator unchanged, so training and its paired metrics go on.
    """
    if extractor is None:
        try:
            extractor = load_inception(inception_weights)
        except InceptionUnavailableError as exc:
            log.warning("%s; continuing without FID/KID", exc)
            return paired
    if paired is not None:
        test_A, test_B = paired.test_A, paired.test_B
    else:
        test_A, test_B = load_split_images(root, img_size)
    return TranslationEvaluator(test_A, test_B, paired, extractor, device=device)


def format_evaluation(metrics: dict[str, float], baselines: dict[str, float]) -> str:
    """The paired table (if any) and a FID/KID table, model beside the identity baseline."""
    blocks = []
    if any(k.startswith(("eval/psnr", "eval/ssim")) for k in metrics):
        blocks.append(format_report(metrics, baselines))
    rows = [
        (label, name, direction)
        for direction, label in (("AB", "A->B"), ("BA", "B->A"))
        for name in ("fid", "kid")
        if f"eval/{name}_{direction}" in metrics
    ]
    if rows:
        lines = [f"{'':10s}{'model':>16s}{'identity':>16s}"]
        for label, name, direction in rows:
            key = f"{name}_{direction}"
            cells = [metrics[f"eval/{key}"], baselines.get(f"baseline/identity/{key}", math.nan)]
            fmt = "{:>16.2f}" if name == "fid" else "{:>16.4f}"
            lines.append(
                f"{label + ' ' + name.upper():10s}" + "".join(fmt.format(c) for c in cells)
            )
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
