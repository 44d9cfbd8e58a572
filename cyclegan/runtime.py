"""Where and how tensors are computed: the device, seeding, backend flags and mixed precision.

Inference tools (translate, evaluate) import this module, never the training loop.
"""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch

# trainer.precision -> the autocast dtype (None: plain fp32).
AMP_DTYPES = {"32": None, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def resolve_device(name: str) -> torch.device:
    """`auto` -> CUDA if present, else Apple MPS, else CPU; anything else as given."""
    if name != "auto":
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(
                f"trainer.device={name} but CUDA is not available; use trainer.device=auto or cpu"
            )
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices), so a run is reproducible from `seed`."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def configure_backends(device: torch.device, cudnn_benchmark: bool) -> None:
    """Process-wide backend flags for training on `device`.

    Training images all have one size, so timing cuDNN's algorithms once pays off (CUDA only).
    """
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = cudnn_benchmark


class Precision:
    """Mixed precision for a training step (trainer.precision): autocast for the forward passes and,
    for fp16, a loss scaler that keeps gradients from underflowing (a pass-through otherwise)."""

    def __init__(self, precision: str, device: torch.device) -> None:
        if precision not in AMP_DTYPES:
            raise ValueError(f"precision={precision!r}: use one of {', '.join(AMP_DTYPES)}")
        self.dtype = AMP_DTYPES[precision]
        self.device_type = device.type
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision == "16-mixed")

    def autocast(self) -> contextlib.AbstractContextManager:
        """The forward-pass context; a no-op at fp32."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward_and_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """Backward of the (scaled) loss, then the optimizer step (skipped on fp16 overflow)."""
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
