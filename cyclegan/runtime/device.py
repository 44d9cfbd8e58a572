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


def resolve_precision(requested: str, device: torch.device) -> str:
    """`auto` -> `bf16-mixed` on CUDA with bf16 support, else `32`; other values as given.

    Why (benchmarks/README.md): on one H200 at 256 px / 9 blocks / batch 8, bf16 autocast ran the
    step 1.5x faster than fp32 (1.8x with channels_last + compile) with half the activation
    memory, and the default 64 px run ended with a similar quality table in bf16 and fp32 (A->B
    17.40 dB / 0.6456 against 17.29 / 0.6375; B->A 19.22 / 0.5273 against 19.46 / 0.5342; one run
    each: whether that is within seed noise is for benchmarks/gpu_check.sh to measure). Weights,
    optimizer state and replay buffers stay fp32. A CPU stays fp32 (without bf16 matrix units a
    bf16 step ran at 0.12x on the 2-core machine), and so does MPS (its bf16 support varies by
    OS version). fp16 is never chosen: its loss scaling reads a flag on the host every step.
    """
    if requested == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False):
            return "bf16-mixed"
        return "32"
    if requested not in AMP_DTYPES:
        raise ValueError(
            f"trainer.precision={requested!r} is not one of auto, {', '.join(AMP_DTYPES)}; "
            "use auto (bf16 on recent GPUs, fp32 elsewhere) or 32"
        )
    return requested


class Precision:
    """Mixed precision for a training step (trainer.precision): autocast for the forward passes and,
    for fp16, a loss scaler that keeps gradients from underflowing (a pass-through otherwise).

    `graph_safe=True` turns autocast's cache of low-precision weight copies off: a CUDA graph
    would replay the copies made at capture, stale once the weights change.
    """

    def __init__(self, precision: str, device: torch.device, graph_safe: bool = False) -> None:
        self.name = resolve_precision(precision, device)
        self.dtype = AMP_DTYPES[self.name]
        self.device_type = device.type
        self.cache_enabled = not graph_safe
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.name == "16-mixed")

    def autocast(self) -> contextlib.AbstractContextManager:
        """The forward-pass context; a no-op at fp32."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype, cache_enabled=self.cache_enabled)

    def backward_and_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """Backward of the (scaled) loss, then the optimizer step (skipped on fp16 overflow)."""
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
