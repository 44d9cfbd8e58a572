"""Anti-aliased down- and upsampling (Zhang, "Making Convolutional Networks Shift-Invariant Again", 2019).

CUT replaces every stride-2 convolution of its generator and discriminator by a stride-1 convolution
followed by `Downsample`, and every transposed convolution of its generator by `Upsample` followed by
a stride-1 convolution. A strided convolution samples its input without low-pass filtering it first,
so a one-pixel shift of the input can change the output a lot (aliasing); blurring with a binomial
filter before subsampling (and after zero-insertion when upsampling) makes the networks closer to
shift-equivariant, which matters for CUT's patch correspondences.

Both modules hold their filter as a persistent buffer named ``filt`` (shape (C, 1, k, k), one copy
per channel for a depthwise convolution), exactly as the reference code
(taesungp/contrastive-unpaired-translation, ``models/networks.py``) does, so its checkpoints, which
carry these buffers, load with ``strict=True``. The values never change in training.

The 1-D binomial filter of size k is row k-1 of Pascal's triangle, normalised to sum 1
(k=3: [1, 2, 1]/4, k=4: [1, 3, 3, 1]/8); the 2-D filter is its outer product with itself.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def binomial_filter(size: int) -> torch.Tensor:
    """(size, size) blur kernel: outer product of the binomial row C(size-1, i), summing to 1."""
    if size < 1:
        raise ValueError(f"filter size must be >= 1, got {size}")
    row = torch.tensor([math.comb(size - 1, i) for i in range(size)], dtype=torch.float64)
    kernel = row[:, None] * row[None, :]
    return (kernel / kernel.sum()).to(torch.float32)


class Downsample(nn.Module):
    """Blur, then subsample: reflection pad, depthwise conv with a binomial filter, stride 2.

    Output side floor((H + 2p - k) / s) + 1 with p = (k-1)/2: 64 -> 32, 63 -> 32 (k=3, s=2).
    """

    def __init__(self, channels: int, filt_size: int = 3, stride: int = 2) -> None:
        super().__init__()
        if filt_size < 2:
            raise ValueError(f"Downsample filt_size must be >= 2, got {filt_size}")
        self.channels = channels
        self.stride = stride
        # (left, right, top, bottom): the extra pixel of an even filter goes right/bottom.
        lo, hi = (filt_size - 1) // 2, math.ceil((filt_size - 1) / 2)
        self.pad = nn.ReflectionPad2d((lo, hi, lo, hi))
        filt = binomial_filter(filt_size)[None, None].repeat(channels, 1, 1, 1)
        self.register_buffer("filt", filt)  # persistent: the reference's state dicts hold it

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C, ~H/2, ~W/2)
        return F.conv2d(self.pad(x), self.filt, stride=self.stride, groups=x.shape[1])


class Upsample(nn.Module):
    """Zero-insert, then blur: replication pad, depthwise transposed conv with a binomial filter.

    The filter is scaled by stride**2 so that the inserted zeros do not darken the image (each output
    pixel receives weights summing to 1). The transposed conv of the 1-padded input gives a map of
    side 2H + 2 (k=4); the first row/column is dropped, and for even k also the last: H -> 2H.
    """

    def __init__(self, channels: int, filt_size: int = 4, stride: int = 2) -> None:
        super().__init__()
        if filt_size < 2:
            raise ValueError(f"Upsample filt_size must be >= 2, got {filt_size}")
        self.channels = channels
        self.stride = stride
        self.filt_odd = filt_size % 2 == 1
        self.pad_size = (filt_size - 1) // 2
        self.pad = nn.ReplicationPad2d(1)
        filt = binomial_filter(filt_size) * stride**2
        self.register_buffer("filt", filt[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C, 2H, 2W)
        out = F.conv_transpose2d(
            self.pad(x), self.filt, stride=self.stride, padding=1 + self.pad_size, groups=x.shape[1]
        )[:, :, 1:, 1:]
        return out if self.filt_odd else out[:, :, :-1, :-1]
