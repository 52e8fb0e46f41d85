"""Error bars for the study: a mean over seeds with its 95% Student-t interval, and verdicts decided by intervals.

Each seed changes the initial weights, the training subsets and the batch order
together, so the spread of a number over seeds is the noise a reader would meet
when rerunning the study. With n seeds, the 95% interval of the mean is

    mean ± t(0.975, n − 1) · s / √n        (s: the sample standard deviation over seeds)

A difference between two models is measured *paired*: every model is trained
with the same seeds and the same data order, so the difference is taken seed by
seed first (a − b for seed 0, seed 1, ...) and the interval is that of those
differences. What the seed does to both models cancels, which makes the paired
interval narrower than the two separate intervals would suggest.

A verdict follows the interval, never the mean alone: "yes" when the whole
interval is above zero, "no" when it is below, and "within noise at this size"
when it contains zero. With one seed there is no spread to measure: the interval
is infinitely wide and every verdict is "within noise".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# t(0.975, df) for df = 1..30 (scipy.stats.t.ppf, 4 decimals); beyond 30 a Cornish–Fisher expansion is exact to 1e-5.
_T975 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281, 2.2010, 2.1788, 2.1604,
         2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860, 2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555,
         2.0518, 2.0484, 2.0452, 2.0423)
_Z975 = 1.959963984540054

YES, NO, NOISE = "yes", "no", "within noise at this size"


def t_quantile_975(df: int) -> float:
    """The 97.5% quantile of Student's t with `df` degrees of freedom: a two-sided 95% interval's multiplier."""
    if df < 1:
        raise ValueError(f"t_quantile_975: degrees of freedom must be at least 1, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    return z + g1 / df + g2 / df**2 + g3 / df**3


@dataclass(frozen=True)
class Interval:
    """A mean over seeds and its 95% interval, mean ± half_width (inf with a single seed)."""

    mean: float
    half_width: float
    values: tuple[float, ...]  # one per seed, in seed order

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    @property
    def n(self) -> int:
        return len(self.values)

    def __neg__(self) -> Interval:
        """The interval of −x: a drop read as a change."""
        return Interval(-self.mean, self.half_width, tuple(-v for v in self.values))

    def verdict(self) -> str:
        """YES if the interval lies above 0, NO if below, NOISE if it contains 0."""
        if self.low > 0:
            return YES
        if self.high < 0:
            return NO
        return NOISE

    def to_json(self) -> dict[str, object]:
        """For results.json: an infinite half-width (one seed) is written as null."""
        finite = math.isfinite(self.half_width)
        return {"mean": self.mean, "half_width": self.half_width if finite else None,
                "low": self.low if finite else None, "high": self.high if finite else None,
                "values": list(self.values)}


def mean_interval(values: Sequence[float]) -> Interval:
    """The mean of per-seed values with its Student-t 95% interval."""
    xs = tuple(float(v) for v in values)
    if not xs:
        raise ValueError("mean_interval: no values (at least one seed is needed)")
    mean = math.fsum(xs) / len(xs)
    if len(xs) == 1:
        return Interval(mean, math.inf, xs)
    if min(xs) == max(xs):  # no spread: exactly zero width (the sums below would leave a rounding residue)
        return Interval(xs[0], 0.0, xs)
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (len(xs) - 1))
    return Interval(mean, t_quantile_975(len(xs) - 1) * sd / math.sqrt(len(xs)), xs)


def paired_interval(a: Sequence[float], b: Sequence[float]) -> Interval:
    """The interval of the mean difference a − b, taken seed by seed (a[i] and b[i] share seed i)."""
    if len(a) != len(b):
        raise ValueError(f"paired_interval: {len(a)} values against {len(b)}; pairs need one value per seed each")
    return mean_interval([x - y for x, y in zip(a, b)])
