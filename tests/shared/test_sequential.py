"""The always-valid interval: under no difference, watching it after every batch of answers
and stopping at the first interval excluding zero stays within the error rate (a fixed-sample
interval watched the same way does not); under a real difference it excludes zero, on the right
side."""

from __future__ import annotations

import math

import numpy as np

from shared.sequential import UserSums, between, difference, ratio

LOOKS, BATCH = 200, 50


def _stops_early(rng: np.random.Generator, pa: float, pb: float, sequential: bool) -> int:
    """+1 / -1: the first look whose interval excluded 0 said B higher / lower; 0: never."""
    sa = sb = na = nb = 0
    for _ in range(LOOKS):
        sa += int(rng.binomial(BATCH, pa))
        sb += int(rng.binomial(BATCH, pb))
        na += BATCH
        nb += BATCH
        if sequential:
            d = difference(sb, nb, sa, na, alpha=0.05, tau=0.02)
            assert d is not None
            low, high = d.low, d.high
        else:  # the usual 95 % interval, as if each look were the only one
            a, b = sa / na, sb / nb
            half = 1.96 * math.sqrt(a * (1 - a) / na + b * (1 - b) / nb)
            low, high = b - a - half, b - a + half
        if low > 0:
            return 1
        if high < 0:
            return -1
    return 0


def test_watching_continuously_keeps_the_error_rate() -> None:
    rng = np.random.default_rng(7)
    runs = 400
    sequential = sum(_stops_early(rng, 0.1, 0.1, True) != 0 for _ in range(runs)) / runs
    naive = sum(_stops_early(rng, 0.1, 0.1, False) != 0 for _ in range(runs)) / runs
    print(f"false verdicts in {runs} A/A runs of {LOOKS} looks: always-valid {sequential:.3f}, "
          f"fixed-sample interval {naive:.3f}")  # fmt: skip
    assert sequential <= 0.05 + 0.02  # 0.05 nominal; 400 runs leave about +-0.02 of noise
    assert naive > 0.15  # the fixed-sample interval, peeked at, errs far more often


def test_a_real_difference_is_found_on_the_right_side() -> None:
    rng = np.random.default_rng(11)
    verdicts = [_stops_early(rng, 0.10, 0.13, True) for _ in range(50)]
    assert verdicts.count(1) >= 45 and verdicts.count(-1) == 0


def test_no_trials_no_interval_and_extreme_rates_stay_finite() -> None:
    assert difference(0, 0, 5, 10, 0.05, 0.02) is None
    d = difference(0, 100, 100, 100, 0.05, 0.02)
    assert d is not None and d.estimate == -1.0 and d.high < 0 and math.isfinite(d.low)


def _user_sums(n: np.ndarray, y: np.ndarray) -> UserSums:
    return UserSums(len(n), float(y.sum()), float(n.sum()), float((y * y).sum()),
                    float((n * n).sum()), float((n * y).sum()))  # fmt: skip


def _aa_with_returning_users(rng: np.random.Generator, by_user: bool) -> bool:
    """An A/A test where each of 150 users per arm comes back for 40 lists with their own click
    propensity: True if any of 40 looks excluded 0."""
    pa, pb = rng.beta(1, 3, 150), rng.beta(1, 3, 150)
    na, nb, ya, yb = (np.zeros(150) for _ in range(4))
    for _ in range(40):
        na += 1
        nb += 1
        ya += rng.random(150) < pa
        yb += rng.random(150) < pb
        if by_user:
            a, b = ratio(_user_sums(na, ya)), ratio(_user_sums(nb, yb))
            assert a is not None and b is not None
            d = between(b[0], b[1], a[0], a[1], alpha=0.05, tau=0.02)
        else:
            found = difference(int(yb.sum()), int(nb.sum()), int(ya.sum()), int(na.sum()),
                               alpha=0.05, tau=0.02)  # fmt: skip
            assert found is not None
            d = found
        if d.low > 0 or d.high < 0:
            return True
    return False


def test_returning_users_need_the_user_as_the_unit() -> None:
    rng = np.random.default_rng(5)
    runs = 200
    per_user = sum(_aa_with_returning_users(rng, True) for _ in range(runs)) / runs
    per_list = sum(_aa_with_returning_users(rng, False) for _ in range(runs)) / runs
    print(f"false verdicts in {runs} A/A runs with returning users: users as the unit "
          f"{per_user:.3f}, lists as independent trials {per_list:.3f}")  # fmt: skip
    assert per_user <= 0.05 + 0.03
    assert per_list > 2 * per_user  # lists of one user are not independent
