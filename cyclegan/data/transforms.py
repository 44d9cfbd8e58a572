"""Image transforms for CycleGAN: PIL image in, tensor in [-1, 1] out.

The generators end in ``tanh``, so real images are normalised to the same [-1, 1] range;
``to_image_range`` maps tensors back to [0, 1] for metrics and sample grids.
"""

from __future__ import annotations

import torch
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

__all__ = [
    "eval_transform",
    "normalize_transform",
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


def train_transform(img_size: int, load_scale: float = 1.12, flip: bool = True) -> T.Compose:
    """CycleGAN training augmentation: upscale the short side, random crop, random mirror.

    ``load_scale=1.12`` reproduces the paper's 286 -> 256 "resize and crop" at 256 px.
    """
    _check_img_size(img_size)
    if not load_scale >= 1:  # also rejects NaN
        raise ValueError(
            f"load_scale must be >= 1 so the resized image covers the {img_size}px crop, "
            f"got {load_scale!r}; use 1.0 for no extra margin"
        )
    # int() floors, but img_size * load_scale >= img_size for load_scale >= 1, so the
    # resized short side can never be smaller than the crop.
    load_size = int(img_size * load_scale)
    steps: list[object] = [
        T.Resize(load_size, interpolation=InterpolationMode.BICUBIC),
        T.RandomCrop(img_size),
    ]
    if flip:
        steps.append(T.RandomHorizontalFlip())
    steps += [T.ToTensor(), T.Normalize(_MEAN, _STD)]
    return T.Compose(steps)


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
