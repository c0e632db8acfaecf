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
    """B's rate minus A's with an always-valid (1 - alpha) interval, trials independent; None
    without trials."""
    if trials_a <= 0 or trials_b <= 0:
        return None
    pa, pb = successes_a / trials_a, successes_b / trials_b
    # A rate of exactly 0 or 1 has no variance estimate; half a success keeps it honest.
    va = _clipped(pa, trials_a) * (1 - _clipped(pa, trials_a)) / trials_a
    vb = _clipped(pb, trials_b) * (1 - _clipped(pb, trials_b)) / trials_b
    return between(pb, vb, pa, va, alpha, tau)


def between(rb: float, vb: float, ra: float, va: float, alpha: float, tau: float) -> Interval:
    """rb - ra, each estimated with variance vb / va, with the always-valid interval."""
    v, t2 = max(va + vb, 1e-12), tau * tau
    half = math.sqrt(v * (v + t2) / t2 * (2 * math.log(1 / alpha) + math.log((v + t2) / v)))
    d = rb - ra
    return Interval(d, d - half, d + half)


@dataclass(frozen=True)
class UserSums:
    """Per-user sums of a ratio metric's numerator y and denominator n (e.g. lists clicked and
    lists served, per user), over the `users` of an arm: what a delta-method variance needs."""

    users: int
    y: float  # sum of y_u
    n: float  # sum of n_u
    y2: float  # sum of y_u^2
    n2: float  # sum of n_u^2
    ny: float  # sum of n_u * y_u


def ratio(s: UserSums) -> tuple[float, float] | None:
    """The ratio sum(y) / sum(n) and its variance, users as the independent unit (the delta
    method, as in Deng et al., "Applying the delta method in metric analytics", 2018): lists of
    one user are not independent trials, and treating them so makes the interval too narrow.
    None without data."""
    if s.users < 2 or s.n <= 0:
        return None
    u = s.users
    r, mean_n = s.y / s.n, s.n / u
    var_y = s.y2 / u - (s.y / u) ** 2
    var_n = s.n2 / u - mean_n**2
    cov = s.ny / u - (s.y / u) * mean_n
    var = (var_y - 2 * r * cov + r * r * var_n) / (u * mean_n * mean_n)
    # A ratio still at 0 or 1 has no spread yet: at least a binomial's over the trials, clipped.
    floor = _clipped(r, int(s.n)) * (1 - _clipped(r, int(s.n))) / s.n
    return r, max(var, floor)


def _clipped(p: float, n: int) -> float:
    lo = 0.5 / n
    return min(max(p, lo), 1 - lo)
