"""Seeds aggregated: the mean, spread and standard error of one grid cell's runs, and whether two
cells can be told apart at the number of seeds run.

GAN results move between seeds by as much as between many grid cells (published reproductions of
one CycleGAN setting differ by 5-10 FID), so a cell is summarised by its seeds, not by one run:

    mean  m = (1/n) sum_i x_i
    std   s = sqrt( sum_i (x_i - m)^2 / (n - 1) )       (sample standard deviation, n >= 2)
    SE      = s / sqrt(n)                               (standard error of the mean)

Two cells "cannot be told apart" when their intervals m ± 2 SE overlap, i.e.

    |m_a - m_b| <= 2 (SE_a + SE_b).

This is a deliberately simple, conservative screen, not a significance test: at n = 3 the standard
error is itself uncertain, and 2 SE is roughly a 95 % interval only for large n. What it says is
"the data do not separate these cells; run more seeds before preferring one". With one seed the
spread is unknown, so nothing can be said (None).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# Width of the interval in standard errors (m ± Z_INTERVAL * SE).
Z_INTERVAL = 2.0


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation of n values (std None when n < 2)."""

    mean: float
    std: float | None
    n: int

    @property
    def se(self) -> float | None:
        """Standard error of the mean, s / sqrt(n); None when the spread is unknown (n < 2)."""
        return None if self.std is None else self.std / math.sqrt(self.n)

    def format(self, digits: int = 4) -> str:
        """`19.17 ± 0.21`: the std to two significant digits and the mean to the same decimal
        place (more would be noise); the mean alone (`digits` significant) for one value."""
        if self.std is None or self.std == 0 or not math.isfinite(self.std):
            text = f"{self.mean:.{digits}g}"
            return text if self.std is None else f"{text} ± 0"
        rounded = float(f"{self.std:.2g}")  # 0.0999999 -> 0.1: one decimal place, not two
        decimals = min(8, max(0, 1 - math.floor(math.log10(rounded))))
        return f"{self.mean:.{decimals}f} ± {self.std:.{decimals}f}"


def summarize(values: Sequence[float]) -> Stat | None:
    """The Stat of finite values; None when there are none."""
    finite = [float(v) for v in values if math.isfinite(v)]
    if not finite:
        return None
    n = len(finite)
    mean = math.fsum(finite) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in finite) / (n - 1)) if n > 1 else None
    return Stat(mean=mean, std=std, n=n)


def cannot_tell_apart(a: Stat, b: Stat, z: float = Z_INTERVAL) -> bool | None:
    """Whether the intervals mean ± z SE of `a` and `b` overlap; None if either has n < 2."""
    if a.se is None or b.se is None:
        return None
    return abs(a.mean - b.mean) <= z * (a.se + b.se)
