"""Image transforms for CycleGAN: PIL image in, tensor in [-1, 1] out.

The generators end in ``tanh``, so real images are normalised to the same [-1, 1] range;
``to_image_range`` maps tensors back to [0, 1] for metrics and sample grids.

Training preprocessing is described by a :class:`Preprocessing` (the official code's
``--preprocess``, ``--load_size``, ``--crop_size``, ``--no_flip``) and runs in two stages:

1. :meth:`Preprocessing.resize` (deterministic, on the PIL image): the mode's resize;
2. :func:`augment` (random, on a uint8 ``(C, H, W)`` tensor): crop, mirror, then [-1, 1].

The file path runs both stages per sample; the in-memory cache runs stage 1 once per file and
stage 2 per sample. Stage 2 is one function for both, so the two paths give the same pixels.
Images keep their channel count (1 for grayscale, 3 for RGB) through both stages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

__all__ = [
    "Preprocess",
    "Preprocessing",
    "augment",
    "crop_flip_normalize",
    "eval_transform",
    "load_size",
    "normalize_transform",
    "parse_crop_size",
    "resize_to_uint8",
    "to_display_rgb",
    "to_image_range",
    "to_uint8_tensor",
    "train_transform",
]

# One value per statistic broadcasts over any channel count (1 or 3); a 3-tuple would silently
# expand a grayscale tensor to 3 channels.
_MEAN = (0.5,)
_STD = (0.5,)


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
    return to_uint8_tensor(resized)


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
    return augment(image, Preprocessing(Preprocess.crop, img_size, img_size, flip))


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


# --------------------------------------------------------------------------------------------
# Preprocessing modes (dataset.preprocess)
# --------------------------------------------------------------------------------------------


class Preprocess(StrEnum):
    """How a training image is brought to the network's input size (the official modes)."""

    resize_and_crop = "resize_and_crop"  # short side to load_size, random crop_size crop
    crop = "crop"  # no resize, random crop_size crop (smaller images are skipped)
    scale_width = "scale_width"  # width to load_size, aspect kept; no crop
    scale_width_and_crop = "scale_width_and_crop"  # width to load_size, random crop
    none = "none"  # only rounded to a multiple of 4 per side (the generator halves twice)


_CROPPING = frozenset(
    {Preprocess.resize_and_crop, Preprocess.crop, Preprocess.scale_width_and_crop}
)
_MODES = ", ".join(m.value for m in Preprocess)


def _positive_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= 1


def parse_crop_size(value: int | str | Sequence[int]) -> tuple[int, int]:
    """``256`` -> (256, 256); ``"256x512"`` (height x width) or ``(256, 512)`` -> (256, 512)."""
    given = value
    if isinstance(value, str):
        text = value.strip().lower()
        parts = text.split("x") if "x" in text else [text, text]
        if len(parts) == 2 and all(p.strip().isdigit() for p in parts):
            value = (int(parts[0]), int(parts[1]))
    elif _positive_int(value):
        value = (int(value), int(value))  # type: ignore[arg-type]
    if isinstance(value, tuple | list) and len(value) == 2 and all(_positive_int(v) for v in value):
        return int(value[0]), int(value[1])
    raise ValueError(
        f"crop_size={given!r}: use a positive integer (square) or 'HxW' such as '256x512'; "
        "fix dataset.crop_size"
    )


def _round_to_4(length: float) -> int:
    # Python's round, as the official __make_power_2 (base 4); never below one 4 px step.
    return max(4, int(round(length / 4) * 4))


@dataclass(frozen=True)
class Preprocessing:
    """The training preprocessing: mode, sizes and mirroring, checked once at construction.

    ``crop_size`` is ``(height, width)``; ``load_size`` is the short side (``resize_and_crop``)
    or the width (``scale_width*``) after resizing, and is unused by ``crop`` and ``none``.
    The default reproduces the seed: 286 short side, random 256 crop, random mirror.
    """

    mode: Preprocess = Preprocess.resize_and_crop
    load_size: int = 286
    crop_size: tuple[int, int] = (256, 256)
    flip: bool = True

    def __post_init__(self) -> None:
        if self.mode not in tuple(Preprocess):
            raise ValueError(
                f"preprocess={self.mode!r} is not a mode; use one of: {_MODES} "
                "(fix dataset.preprocess)"
            )
        object.__setattr__(self, "mode", Preprocess(self.mode))
        object.__setattr__(self, "crop_size", parse_crop_size(self.crop_size))
        if not _positive_int(self.load_size):
            raise ValueError(
                f"load_size={self.load_size!r}: must be an integer >= 1; fix dataset.load_size"
            )
        crop_h, crop_w = self.crop_size
        if self.mode is Preprocess.resize_and_crop and self.load_size < max(crop_h, crop_w):
            # The short side goes to load_size, so only load_size >= both crop sides covers the
            # crop for images of either orientation.
            raise ValueError(
                f"load_size={self.load_size} is smaller than the {crop_h}x{crop_w} crop; "
                f"resize_and_crop needs load_size >= {max(crop_h, crop_w)} (raise dataset.load_size)"
            )
        if self.mode is Preprocess.scale_width_and_crop and self.load_size < crop_w:
            raise ValueError(
                f"load_size={self.load_size} is narrower than the crop width {crop_w}; "
                f"scale_width_and_crop needs load_size >= {crop_w} (raise dataset.load_size)"
            )
        if self.mode is Preprocess.scale_width and self.load_size % 4:
            raise ValueError(
                f"load_size={self.load_size}: scale_width uses it as the width, which the "
                "generator needs divisible by 4; use a multiple of 4 for dataset.load_size"
            )

    @classmethod
    def legacy(cls, img_size: int, load_scale: float = 1.12, flip: bool = True) -> Preprocessing:
        """Today's ``img_size``/``load_scale`` arguments as a preprocessing (resize_and_crop)."""
        return cls(Preprocess.resize_and_crop, load_size(img_size, load_scale), img_size, flip)

    @property
    def crops(self) -> bool:
        """True when every sample is cropped to ``crop_size`` (so all samples share one size)."""
        return self.mode in _CROPPING

    def resized_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of a ``width x height`` image after the mode's resize."""
        mode, load = self.mode, self.load_size
        if mode is Preprocess.resize_and_crop:
            # torchvision's Resize(int): short side exact, long side floored.
            if width <= height:
                return load, int(load * height / width)
            return int(load * width / height), load
        if mode in (Preprocess.scale_width, Preprocess.scale_width_and_crop):
            if width == load and height >= self.crop_size[0]:
                return width, height  # as the official __scale_width: nothing to do
            new_h = int(max(load * height / width, self.crop_size[0]))
            if mode is Preprocess.scale_width:
                # Not in the official code, whose uncropped heights (e.g. 341) come out of the
                # generator one pixel short: round so the cycle loss sees equal shapes.
                new_h = _round_to_4(new_h)
            return load, new_h
        if mode is Preprocess.none:
            return _round_to_4(width), _round_to_4(height)
        return width, height  # crop: no resize

    def fits(self, width: int, height: int) -> bool:
        """False only for images that the crop does not fit after resizing (``crop`` mode)."""
        if not self.crops:
            return True
        new_w, new_h = self.resized_size(width, height)
        return new_h >= self.crop_size[0] and new_w >= self.crop_size[1]

    def resize(self, img: Image.Image) -> Image.Image:
        """Stage 1: the mode's deterministic bicubic resize (PIL's, as torchvision's Resize)."""
        size = self.resized_size(*img.size)
        if size == img.size:
            return img
        return img.resize(size, Image.Resampling.BICUBIC)

    def load_uint8(self, img: Image.Image) -> torch.Tensor:
        """Stage 1 as a uint8 ``(C, H, W)`` tensor: what the cache keeps per file."""
        return to_uint8_tensor(self.resize(img))

    def __call__(self, img: Image.Image) -> torch.Tensor:
        """Both stages on a PIL image: a training sample in [-1, 1] (the file path)."""
        return augment(self.load_uint8(img), self)

    def _eval_resize(self, img: Image.Image) -> Image.Image:
        cover = T.Resize(max(self.crop_size), interpolation=InterpolationMode.BICUBIC)
        if self.mode is Preprocess.resize_and_crop:
            return cover(img)  # the whole image at crop scale, as eval_transform(img_size) does
        img = self.resize(img)
        if img.height >= self.crop_size[0] and img.width >= self.crop_size[1]:
            return img
        return cover(img)

    def eval_transform(self) -> T.Compose:
        """Deterministic counterpart for sample grids and metrics: one ``crop_size`` in every mode.

        ``resize_and_crop`` resizes the short side to the crop's longer side (for a square crop
        exactly :func:`eval_transform`); the other modes apply their own resize, an image still
        smaller than the crop is upscaled (short side to the crop's longer side), then all take a
        centre crop and no mirror. So test images of any shape stack, whatever the mode.
        """
        return T.Compose(
            [
                T.Lambda(self._eval_resize),
                T.CenterCrop(self.crop_size),
                T.ToTensor(),
                T.Normalize(_MEAN, _STD),
            ]
        )


def to_uint8_tensor(img: Image.Image) -> torch.Tensor:
    """PIL image (L or RGB) -> uint8 ``(C, H, W)``; grayscale stays one channel."""
    array = np.array(img, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def augment(image: torch.Tensor, spec: Preprocessing) -> torch.Tensor:
    """Stage 2 on a uint8 ``(C, H, W)`` image: the random crop (cropping modes), the random
    mirror (``spec.flip``), then [-1, 1].

    Draws from torch's global generator in the order and ranges of ``T.RandomCrop`` and
    ``T.RandomHorizontalFlip`` (top, left, then the flip), so under the same seed it picks the
    crop and mirror the torchvision pipeline would.
    """
    out = image
    if spec.crops:
        crop_h, crop_w = spec.crop_size
        _, height, width = image.shape
        if height < crop_h or width < crop_w:
            raise ValueError(
                f"image of {height}x{width} is smaller than the {crop_h}x{crop_w} crop; "
                "lower dataset.crop_size or use dataset.preprocess=resize_and_crop"
            )
        top = left = 0
        if (height, width) != (crop_h, crop_w):  # RandomCrop draws nothing for an exact fit
            top = int(torch.randint(0, height - crop_h + 1, size=(1,)).item())
            left = int(torch.randint(0, width - crop_w + 1, size=(1,)).item())
        out = image[:, top : top + crop_h, left : left + crop_w]
    if spec.flip and torch.rand(1).item() < 0.5:
        out = out.flip(-1)
    # Same arithmetic as ToTensor + Normalize(0.5, 0.5): bit-identical to the PIL path.
    return out.to(torch.float32).div(255).sub(0.5).div(0.5)


def to_display_rgb(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) with C in {1, 3} -> 3 channels, repeating grayscale, for grids only.

    Sample grids put both domains side by side, so a grayscale domain next to an RGB one is
    shown as gray RGB; training and saved translations stay one channel.
    """
    if x.shape[-3] == 1:
        return x.expand(*x.shape[:-3], 3, *x.shape[-2:])
    if x.shape[-3] != 3:
        raise ValueError(f"cannot display {x.shape[-3]}-channel images; expected 1 or 3")
    return x
