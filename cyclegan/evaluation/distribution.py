"""FID and KID of translated images (torchmetrics), beside the paired PSNR/SSIM of `.paired`.

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
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

# torch-fidelity's port of the TF FID Inception, the network FID numbers in papers use.
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_URL = (
    f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{INCEPTION_FILE}"
)


class InceptionUnavailableError(RuntimeError):
    """The Inception weights are neither cached nor downloadable (offline), or torch-fidelity is missing."""


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
    model.weights_file = str(path)  # for the evaluation protocol (its hash, in summary.json)
    return model


# What reports say when a domain is grayscale: Inception only reads RGB.
GRAYSCALE_NOTE = "FID/KID: one-channel images are repeated to three channels for Inception"


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
