"""How a run's numbers were measured, written into `summary.json` as `eval_protocol`.

Numbers are comparable only under the same protocol: FID moves with the image count (it is biased
upwards on small sets), the image size, the feature network and its exact weights; PSNR/SSIM with
the test images. So each summary states its metrics, test image counts and size and, for FID/KID,
the feature network and the SHA-256 of its weights file (computed once per file and cached beside
it in `<file>.sha256`, keyed by size and modification time), and sweep.py warns when the jobs it
ranks differ.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cyclegan.files import atomic_write

INCEPTION_NAME = "FID Inception v3 (torch-fidelity inception-v3-compat, 2048-d pool features)"
SSIM_RULE = "PSNR/SSIM of images in [0, 1]; SSIM: Gaussian window 11, sigma 1.5, valid windows only"


def file_sha256(path: str | Path) -> str:
    """The file's SHA-256, from `<file>.sha256` when that matches its size and modification time,
    else computed (about 0.3 s for the 91 MB Inception weights) and cached there if writable."""
    path = Path(path)
    stat = path.stat()
    key = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    cache = path.with_name(path.name + ".sha256")
    try:
        cached = json.loads(cache.read_text())
        if {k: cached.get(k) for k in key} == key and isinstance(cached.get("sha256"), str):
            return cached["sha256"]
    except (OSError, ValueError, AttributeError):
        pass
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    text = json.dumps({**key, "sha256": digest.hexdigest()}) + "\n"
    with contextlib.suppress(OSError):  # a read-only cache folder: computed again next time
        atomic_write(cache, lambda tmp: tmp.write_text(text), fsync=False)
    return digest.hexdigest()


def parameters_sha256(module: nn.Module) -> str:
    """SHA-256 of a module's state (names, shapes and values), for feature networks with no file."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        value = tensor.detach().cpu().contiguous()
        digest.update(str(tuple(value.shape)).encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def feature_network(extractor: nn.Module) -> dict[str, Any]:
    """The FID/KID feature network: its name and its weights' file and hash."""
    weights = getattr(extractor, "weights_file", None)
    if weights is not None and Path(weights).is_file():
        return {
            "feature_network": INCEPTION_NAME,
            "weights_file": Path(weights).name,
            "weights_sha256": file_sha256(weights),
        }
    kind = type(extractor)
    return {
        "feature_network": f"{kind.__module__}.{kind.__qualname__}",
        "weights_file": None,
        "weights_sha256": parameters_sha256(extractor),
    }


def evaluation_protocol(evaluator: Any) -> dict[str, Any] | None:
    """What the run's evaluator measures and on what (None: the run evaluates nothing)."""
    if evaluator is None:
        return None
    test = getattr(evaluator, "test", None) or {"A": evaluator.test_A, "B": evaluator.test_B}
    paired = getattr(evaluator, "paired", evaluator)  # a PairedEvaluator is its own paired part
    extractor = getattr(evaluator, "extractor", None)
    metrics = (["psnr", "ssim"] if paired is not None else []) + (
        ["fid", "kid"] if extractor is not None else []
    )
    protocol: dict[str, Any] = {
        "metrics": metrics,
        "test_images": {k: int(v.shape[0]) for k, v in test.items()},
        "image_size": [int(s) for s in test["A"].shape[2:]],
        "paired": paired is not None,
    }
    if paired is not None:
        protocol["psnr_ssim"] = SSIM_RULE
    if extractor is not None:
        distribution = next(iter(evaluator.distribution.values()), None)
        protocol["fid_kid"] = {
            **feature_network(extractor),
            "kid_subsets": getattr(distribution, "kid_subsets", None),
            "kid_subset_size": getattr(distribution, "kid_subset_size", None),
        }
    return protocol
