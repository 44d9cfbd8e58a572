"""What the lockstep harnesses share: per-step snapshots of three runs and the drift table.

Three runs step together on the same batches and random draws: the reference with one intra-op
thread (R1), the reference with two (R2) and the project with one (P). R2 - R1 is the reference's
own float drift (the same code summing in another order); P - R1 is the gap to explain. A step is
*parted* when, for losses, gradients or weights, the gap exceeds `FACTOR` times the drift envelope
(the largest drift up to that step: once rounding has decorrelated two runs of the same code, a
loss at one step is as far from the other run's as chance has it, so one step's drift is one draw
of that spread) and `FLOOR` (so an all-zero drift does not flag rounding-level gaps).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

FACTOR = 10.0  # a gap this many times the drift is no longer "the same run, rounded differently"
FLOOR = 1e-6  # absolute: below this a gap is rounding whatever the drift (float32 eps ~ 1.2e-7)
PREFIXES = ("module.",)  # the reference wraps its nets in DataParallel, even on the CPU


def set_backend(threads: int, onednn: bool) -> None:
    """Intra-op threads and oneDNN (mkldnn) convolutions, process-wide: two ways to run the same
    code with another summation order (the drift yardsticks: `--drift threads|onednn`)."""
    torch.set_num_threads(threads)
    torch.backends.mkldnn.enabled = onednn


def drift_setting(drift: str, threads: int) -> tuple[int, bool]:
    """R2's (threads, oneDNN): `threads` threads, or one thread without oneDNN."""
    return (threads, True) if drift == "threads" else (1, False)


def strip(name: str) -> str:
    """A parameter name without DataParallel's wrapper prefix."""
    for prefix in PREFIXES:
        name = name.replace(prefix, "")
    return name


@dataclass
class Snapshot:
    """One run's state after a step: scalar losses, gradients and weights by network.name."""

    losses: dict[str, float] = field(default_factory=dict)
    grads: dict[str, torch.Tensor] = field(default_factory=dict)
    weights: dict[str, torch.Tensor] = field(default_factory=dict)


def snapshot(nets: Mapping[str, nn.Module], losses: Mapping[str, object]) -> Snapshot:
    """Copies of every parameter and its gradient (a missing gradient counts as zeros)."""
    snap = Snapshot(losses={k: float(v) for k, v in losses.items()})  # type: ignore[arg-type]
    for net_name, net in nets.items():
        for name, p in net.named_parameters():
            key = f"{net_name}.{strip(name)}"
            snap.weights[key] = p.detach().clone()
            grad = p.grad if p.grad is not None else torch.zeros_like(p)
            snap.grads[key] = grad.detach().clone()
    return snap


def max_diff(a: Mapping[str, object], b: Mapping[str, object]) -> tuple[float, str]:
    """Largest |a - b| over the shared keys, and the key where it is (the keys must agree)."""
    if set(a) != set(b):
        raise KeyError(f"the runs name different things: {sorted(set(a) ^ set(b))[:6]}")
    worst, where = 0.0, "-"
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, torch.Tensor):
            d = (x.double() - y.double()).abs().max().item()  # type: ignore[union-attr]
        else:
            d = abs(float(x) - float(y))  # type: ignore[arg-type]
        if not d <= worst:  # NaN counts as the worst
            worst, where = d, key
    return worst, where


CATEGORIES = ("losses", "grads", "weights")


@dataclass
class StepRow:
    """Gap (P - R1) and drift (R2 - R1) of one step, per category, with the worst tensor."""

    step: int
    gap: dict[str, tuple[float, str]]
    drift: dict[str, tuple[float, str]]
    envelope: dict[str, float] = field(default_factory=dict)  # the largest drift so far

    def parted(self) -> list[str]:
        """The categories where the project left the reference faster than its own drift."""
        out = []
        for cat in CATEGORIES:
            g, d = self.gap[cat][0], self.envelope.get(cat, self.drift[cat][0])
            if not g <= max(FACTOR * d, FLOOR):
                out.append(cat)
        return out


def compare(
    step: int,
    r1: Snapshot,
    r2: Snapshot,
    p: Snapshot,
    keys: Iterable[str],
    previous: StepRow | None = None,
) -> StepRow:
    """The row of one step; `keys` are the losses both codes report, `previous` the last row."""
    keys = list(keys)
    pick = lambda s: {k: s.losses[k] for k in keys}  # noqa: E731
    gap = {"losses": max_diff(pick(p), pick(r1))}
    drift = {"losses": max_diff(pick(r2), pick(r1))}
    for cat in ("grads", "weights"):
        gap[cat] = max_diff(getattr(p, cat), getattr(r1, cat))
        drift[cat] = max_diff(getattr(r2, cat), getattr(r1, cat))
    before = previous.envelope if previous else {}
    envelope = {c: max(drift[c][0], before.get(c, 0.0)) for c in CATEGORIES}
    return StepRow(step, gap, drift, envelope)


def fmt(x: float) -> str:
    return "nan" if math.isnan(x) else f"{x:.1e}"


def table(rows: list[StepRow], every: int = 1) -> str:
    """Markdown: per step, each category's gap and drift, the worst tensor of the gap, the verdict."""
    head = "| step | loss gap | loss drift | grad gap | grad drift | weight gap | weight drift | worst tensor (gap) | parted |"
    lines = [head, "|" + "---|" * 9]
    for row in rows:
        if row.step % every and row is not rows[-1] and not row.parted():
            continue
        cells = []
        for cat in CATEGORIES:
            cells += [fmt(row.gap[cat][0]), fmt(row.drift[cat][0])]
        worst = max(CATEGORIES[1:], key=lambda c: row.gap[c][0] / max(row.drift[c][0], FLOOR))
        parted = ",".join(row.parted()) or "no"
        lines.append(
            f"| {row.step} | " + " | ".join(cells) + f" | {row.gap[worst][1]} | {parted} |"
        )
    return "\n".join(lines)


def verdict(rows: list[StepRow]) -> str:
    """One line: the first parted step and tensor, or that the gap stayed within the drift."""
    for row in rows:
        cats = row.parted()
        if cats:
            cat = cats[0]
            g, where = row.gap[cat]
            return (
                f"PARTED at step {row.step}: {cat} gap {fmt(g)} at {where} > "
                f"{FACTOR:g} x drift {fmt(row.envelope[cat])}"
            )
    last = rows[-1]
    return (
        f"within drift for all {len(rows)} steps (gap <= {FACTOR:g} x drift so far or <= "
        f"{FLOOR:g}); "
        f"last step weights: gap {fmt(last.gap['weights'][0])}, drift {fmt(last.drift['weights'][0])}"
    )
