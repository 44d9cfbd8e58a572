"""Image transforms for CycleGAN: PIL image in, tensor in [-1, 1] out.

The generators end in ``tanh``, so real images are normalised to the same [-1, 1] range;
``to_image_range`` maps tensors back to [0, 1] for metrics and sample grids.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

__all__ = [
    "crop_flip_normalize",
    "eval_transform",
    "load_size",
    "normalize_transform",
    "resize_to_uint8",
    "to_image_range",
    "train_transform",
]

_MEAN = (0.5, 0.5, 0.5)
_STD = (0.5, 0.5, 0.5)


def _check_img_size(img_size: int) -> None:
    # bool is an int subclass; `img_size=True` is always a config mistake.
    if isinstance(img_size, bool) or not isinstance(img_size, int) or img_size < 1:
        raise ValueError(
            f"img_size must be an integer >= 1, got {img_size!r}; fix dataset.img_size"
        )


def normalize_transform() -> T.Compose:
    """PIL image -> float tensor in [-1, 1], without resizing (the range the generators emit)."""
    return T.Compose([T.ToTensor(), T.Normalize(_MEAN, _STD)])


def load_size(img_size: int, load_scale: float = 1.12) -> int:
    """Short side an image is resized to before the random ``img_size`` crop."""
    _check_img_size(img_size)
    if not load_scale >= 1:  # also rejects NaN
        raise ValueError(
            f"load_scale must be >= 1 so the resized image covers the {img_size}px crop, "
            f"got {load_scale!r}; use 1.0 for no extra margin"
        )
    # int() floors, but img_size * load_scale >= img_size for load_scale >= 1, so the
    # resized short side can never be smaller than the crop.
    return int(img_size * load_scale)


def train_transform(img_size: int, load_scale: float = 1.12, flip: bool = True) -> T.Compose:
    """CycleGAN training augmentation: upscale the short side, random crop, random mirror.

    ``load_scale=1.12`` reproduces the paper's 286 -> 256 "resize and crop" at 256 px.
    """
    steps: list[object] = [
        T.Resize(load_size(img_size, load_scale), interpolation=InterpolationMode.BICUBIC),
        T.RandomCrop(img_size),
    ]
    if flip:
        steps.append(T.RandomHorizontalFlip())
    steps += [T.ToTensor(), T.Normalize(_MEAN, _STD)]
    return T.Compose(steps)


def resize_to_uint8(img: Image.Image, short_side: int) -> torch.Tensor:
    """Bicubic resize of the short side (as ``train_transform`` does), kept as uint8 (C, H, W).

    A quarter of the memory of float pixels, which is what makes caching a dataset affordable.
    """
    resized = T.Resize(short_side, interpolation=InterpolationMode.BICUBIC)(img)
    return torch.from_numpy(np.array(resized, dtype=np.uint8)).permute(2, 0, 1).contiguous()


def crop_flip_normalize(image: torch.Tensor, img_size: int, flip: bool = True) -> torch.Tensor:
    """``train_transform``'s crop and mirror on a cached uint8 (C, H, W) tensor, then [-1, 1].

    Draws from torch's global generator in the same order and ranges as ``T.RandomCrop`` and
    ``T.RandomHorizontalFlip`` (top, left, then the flip), so under the same seed it picks the
    same crop and mirror as the PIL path.
    """
    _, height, width = image.shape
    if height < img_size or width < img_size:
        raise ValueError(
            f"cached image of {height}x{width} is smaller than the {img_size}px crop; "
            "use dataset.load_scale >= 1"
        )
    top = left = 0
    if (height, width) != (img_size, img_size):  # RandomCrop draws nothing for an exact fit
        top = int(torch.randint(0, height - img_size + 1, size=(1,)).item())
        left = int(torch.randint(0, width - img_size + 1, size=(1,)).item())
    out = image[:, top : top + img_size, left : left + img_size]
    if flip and torch.rand(1).item() < 0.5:
        out = out.flip(-1)
    # Same arithmetic as ToTensor + Normalize(0.5, 0.5): bit-identical to the PIL path.
    return out.to(torch.float32).div(255).sub(0.5).div(0.5)


def eval_transform(img_size: int) -> T.Compose:
    """Deterministic resize (short side) + centre crop, so evaluation sees the same pixels."""
    _check_img_size(img_size)
    return T.Compose(
        [
            T.Resize(img_size, interpolation=InterpolationMode.BICUBIC),
            T.CenterCrop(img_size),
            T.ToTensor(),
            T.Normalize(_MEAN, _STD),
        ]
    )


def to_image_range(x: torch.Tensor) -> torch.Tensor:
    """Map a [-1, 1] tensor to [0, 1], clamped, for metrics and saving images."""
    return ((x + 1.0) * 0.5).clamp_(0.0, 1.0)
