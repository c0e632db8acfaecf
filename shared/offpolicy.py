"""How a model version nobody serves yet would do, estimated from what was served: the
exploration slot's logged draws (shared/served.py `Explored`), reweighted by how likely the
candidate version is to put the same product there.

The target is the click rate of the exploration slot had the candidate version filled it with
one of its own top `m` products for that user, picked uniformly. A logged draw of product i with
propensity p gets weight (1/m)/p when i is in the version's top m, else 0 (clipped at
`max_weight`). The self-normalised estimate (SNIPS) divides by the weights' sum; the plain one
(IPS) by the number of draws. Both are unbiased (IPS) or consistent (SNIPS) only where the log
has support: a version whose top products the draws rarely showed cannot be estimated, and the
answer says so instead of giving a number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

# Fewer matching draws than this: too little support to say anything.
MIN_MATCHES = 30


@dataclass(frozen=True)
class Draw:
    user: str
    product: str
    propensity: float
    clicked: bool


@dataclass(frozen=True)
class Estimate:
    draws: int  # exploration draws read
    matches: int  # draws that showed one of the version's top-m products for that user
    clicks: int  # clicked matches
    ips: float | None
    snips: float | None
    effective_sample_size: float  # (sum w)^2 / sum w^2: how many draws the estimate is worth
    enough_support: bool
    note: str


def estimate(
    draws: Sequence[Draw],
    top: Mapping[str, Sequence[str]],
    m: int,
    max_weight: float = 1000.0,
    min_matches: int = MIN_MATCHES,
) -> Estimate:
    """The candidate version's exploration-slot click rate from `draws`, where `top[user]` is
    its top `m` for that user (users missing from `top` weigh 0)."""
    w = np.zeros(len(draws))
    clicked = np.zeros(len(draws))
    for n, d in enumerate(draws):
        if d.product in set(top.get(d.user, ())[:m]) and d.propensity > 0:
            w[n] = min((1.0 / m) / d.propensity, max_weight)
        clicked[n] = d.clicked
    matches = int((w > 0).sum())
    hits = int(((w > 0) & (clicked > 0)).sum())
    total = float(w.sum())
    ess = total**2 / float((w**2).sum()) if total > 0 else 0.0
    if matches < min_matches:
        note = (f"too little support: {matches} of {len(draws)} exploration draws showed one of "
                f"the version's top {m} products (at least {min_matches} needed); raise "
                f"GATEWAY_EXPLORE_RATE or wait for more traffic")  # fmt: skip
        return Estimate(len(draws), matches, hits, None, None, ess, False, note)
    ips = float((w * clicked).sum()) / len(draws)
    snips = float((w * clicked).sum()) / total
    note = f"{matches} matching draws of {len(draws)}, worth {ess:.0f} draws (effective size)"
    return Estimate(len(draws), matches, hits, ips, snips, ess, True, note)
