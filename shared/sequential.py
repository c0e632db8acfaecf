"""An always-valid comparison of two proportions: a confidence interval for their difference that
may be looked at after every answer and acted on whenever it excludes zero, without inflating
the error rate (peeking at a fixed-sample test's p-value would).

It is the normal-mixture sequential probability ratio test (mSPRT) inverted into a confidence
sequence (Johari, Pekelis & Walsh, "Always valid inference", 2017; Howard et al. 2021): with
the difference estimated as d, its variance as V, and a N(0, tau^2) mixture over the true
difference, the set of differences the test cannot reject at level alpha is
    d +- sqrt(V (V + tau^2) / tau^2 * (2 log(1/alpha) + log((V + tau^2) / V))).
Unlike a fixed-sample interval it widens with log(n) slowly instead of assuming one look. It rests
on the normal approximation of each rate: with few successes it is not to be trusted, which is why
the report waits for a minimum number of lists.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float

    @property
    def positive(self) -> bool:
        return self.low > 0

    @property
    def negative(self) -> bool:
        return self.high < 0


def rate(successes: int, trials: int) -> float | None:
    return successes / trials if trials > 0 else None


def difference(
    successes_b: int, trials_b: int, successes_a: int, trials_a: int, alpha: float, tau: float
) -> Interval | None:
    """B's rate minus A's with an always-valid (1 - alpha) interval; None without trials."""
    if trials_a <= 0 or trials_b <= 0:
        return None
    pa, pb = successes_a / trials_a, successes_b / trials_b
    # A rate of exactly 0 or 1 has no variance estimate; half a success keeps it honest.
    va = _clipped(pa, trials_a) * (1 - _clipped(pa, trials_a)) / trials_a
    vb = _clipped(pb, trials_b) * (1 - _clipped(pb, trials_b)) / trials_b
    v, t2 = va + vb, tau * tau
    half = math.sqrt(v * (v + t2) / t2 * (2 * math.log(1 / alpha) + math.log((v + t2) / v)))
    d = pb - pa
    return Interval(d, d - half, d + half)


def _clipped(p: float, n: int) -> float:
    lo = 0.5 / n
    return min(max(p, lo), 1 - lo)
