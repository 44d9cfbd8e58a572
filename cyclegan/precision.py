"""`trainer.precision=auto`: the fastest precision that is exact enough on the device at hand.

Measured on one H200 (benchmarks/README.md): at 256 px / 9 blocks / batch 8, bf16 autocast runs
the step 1.5x faster than fp32 (1.8x with channels_last + compile) with half the activation
memory, and the default 64 px run ended with a similar quality table in bf16 as in fp32 (A->B
17.40 dB / 0.6456 against 17.29 dB / 0.6375; B->A 19.22 / 0.5273 against 19.46 / 0.5342; one run
each, so whether that is within seed noise is still to be measured: benchmarks/gpu_check.sh).
So `auto` is bf16 autocast on a CUDA device that has bf16 (Ampere and newer), with the weights,
the optimizer state and the replay buffers kept in fp32. On a CPU it is fp32: without bf16 matrix
units a bf16 step is an order of magnitude slower (0.12x measured on the 2-core machine), and on
Apple MPS fp32 too, since its bf16 support varies by OS version. fp16 is never chosen: it needs
loss scaling, which reads a flag on the host every step. `auto` becomes the default only once the
GPU check shows the quality unchanged within seed noise.
"""

from __future__ import annotations

import torch

PRECISIONS = ("32", "bf16-mixed", "16-mixed")


def resolve_precision(requested: str, device: torch.device) -> str:
    """`auto` -> `bf16-mixed` on CUDA with bf16 support, else `32`; other values as given."""
    if requested == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False):
            return "bf16-mixed"
        return "32"
    if requested not in PRECISIONS:
        raise ValueError(
            f"trainer.precision={requested!r} is not one of auto, {', '.join(PRECISIONS)}; "
            "use auto (bf16 on recent GPUs, fp32 elsewhere) or 32"
        )
    return requested
