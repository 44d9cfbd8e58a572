"""Paired image-quality metrics (PSNR, SSIM) and the evaluation against ground truth and baselines.

Only datasets whose test split pairs each A image with its true B image (the built-in synthetic set)
can be scored this way. Two baselines put the numbers in context: the input itself ("identity":
translate nothing) and the mean image of the target domain's training set (a "translation" that
ignores its input). Pixel metrics reward blur, so beating the mean image means the model translates
the content of its input, not just the global colour shift.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from cyclegan.data.transforms import to_image_range
from cyclegan.evaluation.translation import translate_images


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of images in [0, 1], shape (B, C, H, W) -> (B,)."""
    mse = (x - y).pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(1.0 / mse.clamp_min(1e-12))


def _gaussian_window(size: int, sigma: float, channels: int, device: torch.device) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-image SSIM (Wang et al. 2004) of images in [0, 1], Gaussian window, averaged over channels.

    Valid (unpadded) windows only, as in the reference MATLAB code (torchmetrics' default also
    averages over reflection-padded borders, about 1e-3 higher on noisy images).
    (B, C, H, W) -> (B,)
    """
    channels = x.shape[1]
    w = _gaussian_window(window, sigma, channels, x.device)
    c1, c2 = 0.01**2, 0.03**2
    mu_x = F.conv2d(x, w, groups=channels)
    mu_y = F.conv2d(y, w, groups=channels)
    sxx = F.conv2d(x * x, w, groups=channels) - mu_x**2
    syy = F.conv2d(y * y, w, groups=channels) - mu_y**2
    sxy = F.conv2d(x * y, w, groups=channels) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2)
    return (num / den).flatten(1).mean(1)


def score(prediction: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Mean PSNR and SSIM of predictions against targets, both in [-1, 1]."""
    p, t = to_image_range(prediction), to_image_range(target)
    return {"psnr": psnr(p, t).mean().item(), "ssim": ssim(p, t).mean().item()}


# ITU-R 601-2 luma, as PIL's convert("L") and the data's grayscale decoding use.
_LUMA = (0.299, 0.587, 0.114)


def match_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """(N, C, H, W) as `channels` channels, for the identity baseline between a grayscale and an
    RGB domain: gray repeated to RGB, RGB reduced to luma (the weights sum to 1, so this holds in
    [-1, 1] as in [0, 255])."""
    if x.shape[1] == channels:
        return x
    if x.shape[1] == 1:
        return x.expand(-1, channels, -1, -1)
    weights = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * weights).sum(1, keepdim=True)


class PairedEvaluator:
    """Scores G_AB on test A against true B, and G_BA on test B against true A, with baselines.

    The test images and training means are small enough (tens of images) to hold in memory; the
    baselines do not depend on the model, so they are computed once.
    """

    def __init__(
        self,
        test_A: torch.Tensor,
        test_B: torch.Tensor,
        mean_A: torch.Tensor,
        mean_B: torch.Tensor,
        batch_size: int = 16,
    ) -> None:
        if (test_A.shape[0], *test_A.shape[2:]) != (test_B.shape[0], *test_B.shape[2:]):
            raise ValueError(f"paired test sets differ in shape: {test_A.shape} vs {test_B.shape}")
        self.test_A, self.test_B = test_A, test_B  # (N, C, H, W) in [-1, 1]
        self.batch_size = batch_size
        n = test_A.shape[0]
        self.baselines: dict[str, float] = {}
        for direction, source, target, mean in (
            ("AB", test_A, test_B, mean_B),
            ("BA", test_B, test_A, mean_A),
        ):
            identity = match_channels(source, target.shape[1])  # grayscale <-> RGB domains
            for name, guess in (("identity", identity), ("mean", mean.expand(n, -1, -1, -1))):
                for metric, value in score(guess, target).items():
                    self.baselines[f"baseline/{name}/{metric}_{direction}"] = value

    def __call__(
        self, G_AB: torch.nn.Module | None, G_BA: torch.nn.Module | None
    ) -> dict[str, float]:
        """eval/{psnr,ssim}_{AB,BA} of the generators (put in eval mode and restored); None skips
        that direction (one-sided methods such as CUT have no G_BA)."""
        results = {}
        for direction, G, source, target in (
            ("AB", G_AB, self.test_A, self.test_B),
            ("BA", G_BA, self.test_B, self.test_A),
        ):
            if G is None:
                continue
            was_training = G.training
            G.eval()
            try:
                fake = translate_images(G, source, self.batch_size)
            finally:
                G.train(was_training)
            for metric, value in score(fake, target).items():
                results[f"eval/{metric}_{direction}"] = value
        return results
