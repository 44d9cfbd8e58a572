"""Which way is better for a logged number: one rule for best.pt, W&B summaries and sweep.py."""

from __future__ import annotations

# Distribution distances (FID, KID, LPIPS) go down as a model improves; so do losses and times.
LOWER_IS_BETTER_PREFIXES = ("fid", "kid", "lpips", "loss")


def lower_is_better(key: str) -> bool:
    """`eval/fid_AB`, `eval/kid_BA`, `train/loss_G`, `time/step_s`: lower is better; PSNR, SSIM
    and the rest: higher is better."""
    name = key.rsplit("/", 1)[-1].lower()
    return name.startswith(LOWER_IS_BETTER_PREFIXES) or key.lower().startswith("time/")


def metric_mode(key: str, monitor: str | None = None, monitor_mode: str | None = None) -> str:
    """ "min" or "max" for `key`; the monitored metric follows the configured optimized_mode."""
    if monitor is not None and key == monitor and monitor_mode is not None:
        return monitor_mode
    return "min" if lower_is_better(key) else "max"


def improves(value: float, best: float | None, mode: str) -> bool:
    """Whether `value` beats `best` (None: nothing yet) in direction `mode`; NaN never does."""
    if value != value:
        return False
    if best is None:
        return True
    return value < best if mode == "min" else value > best


def default_metric(paired_test: bool | str) -> str:
    """The metric a run optimizes unless told: PSNR of A->B where the test set has ground truth,
    else KID of A->B (unbiased on small test sets, unlike FID; minimised)."""
    paired = paired_test if isinstance(paired_test, bool) else str(paired_test).lower() == "true"
    return "eval/psnr_AB" if paired else "eval/kid_AB"


def fid_enabled(eval_fid: bool | None, paired_test: bool) -> bool:
    """Whether a run evaluates FID/KID: as trainer.eval_fid says, or (None) wherever the test set
    has no ground truth, so that every dataset has a quality metric."""
    return (not paired_test) if eval_fid is None else bool(eval_fid)
