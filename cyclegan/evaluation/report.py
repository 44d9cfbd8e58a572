"""The end-of-run tables: the model beside its baselines, for paired metrics and for FID/KID."""

from __future__ import annotations

import math


def format_report(metrics: dict[str, float], baselines: dict[str, float]) -> str:
    """The end-of-run table: the model beside the identity and mean-image baselines (only the
    directions the model was scored in: a one-sided model has no B->A rows)."""
    lines = [f"{'':10s}{'model':>12s}{'identity':>12s}{'mean image':>12s}"]
    scored = [
        (direction, label)
        for direction, label in (("AB", "A->B"), ("BA", "B->A"))
        if any(k.endswith(f"_{direction}") for k in metrics if k.startswith("eval/"))
    ]
    for direction, label in scored:
        for metric in ("psnr", "ssim"):
            key = f"{metric}_{direction}"
            cells = [
                metrics.get(f"eval/{key}", math.nan),
                baselines.get(f"baseline/identity/{key}", math.nan),
                baselines.get(f"baseline/mean/{key}", math.nan),
            ]
            text = [f"{c:.2f} dB" if metric == "psnr" else f"{c:.4f}" for c in cells]
            lines.append(f"{label + ' ' + metric.upper():10s}" + "".join(f"{t:>12s}" for t in text))
    return "\n".join(lines)


def format_evaluation(metrics: dict[str, float], baselines: dict[str, float]) -> str:
    """The paired table (if any) and a FID/KID table, model beside the identity baseline."""
    blocks = []
    if any(k.startswith(("eval/psnr", "eval/ssim")) for k in metrics):
        blocks.append(format_report(metrics, baselines))
    rows = [
        (label, name, direction)
        for direction, label in (("AB", "A->B"), ("BA", "B->A"))
        for name in ("fid", "kid")
        if f"eval/{name}_{direction}" in metrics
    ]
    if rows:
        lines = [f"{'':10s}{'model':>16s}{'identity':>16s}"]
        for label, name, direction in rows:
            key = f"{name}_{direction}"
            cells = [metrics[f"eval/{key}"], baselines.get(f"baseline/identity/{key}", math.nan)]
            fmt = "{:>16.2f}" if name == "fid" else "{:>16.4f}"
            lines.append(
                f"{label + ' ' + name.upper():10s}" + "".join(fmt.format(c) for c in cells)
            )
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
