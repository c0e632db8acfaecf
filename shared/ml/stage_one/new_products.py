"""Products the live catalog has and a model version does not: reachable before any retrain.

No interactions, no embedding, no graph row: only what the shop wrote about them. Each is
proposed to users whose items read like it (title words, category, tags), as a `cold_start`
candidate, before catalog items nobody took yet (the shop added it since the version was
trained); the ranker gives such candidates reserved places (`RANKER_FRESH_SLOTS`). The next
training takes them in as catalog items (`with_live_catalog`) and the content index takes over.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence

from shared.ml.stage_one.candidate_list import COLD_START, CandidateList
from shared.schemas.serving import ItemFilters

WORD = re.compile(r"[^\W\d_]{3,}")
MIN_SIMILARITY = 0.2


def tokens(title: str | None, category: str | None, tags: Iterable[str] = ()) -> set[str]:
    """What a product's text says, as comparable tokens: title words (3+ letters, lower case),
    its category and its tags."""
    out = {w.lower() for w in WORD.findall(title or "")}
    if category:
        out.add(f"category:{category.lower()}")
    out.update(f"tag:{t.lower()}" for t in tags)
    return out


class NewProducts:
    """The new products of one (version, live catalog) pair, searched by a user's profile."""

    def __init__(
        self,
        products: Sequence[str],
        texts: Sequence[set[str]],
        categories: Sequence[str | None],
        prices: Sequence[float | None],
    ) -> None:
        self.products = list(products)
        self._texts = list(texts)
        self._categories = list(categories)
        self._prices = list(prices)

    def __len__(self) -> int:
        return len(self.products)

    def matches(
        self, profile: Mapping[str, float], n: int, filters: ItemFilters, hidden: Iterable[str]
    ) -> CandidateList:
        """Up to n new products most like `profile` (token -> weight), cosine at least
        MIN_SIMILARITY, passing `filters` and not `hidden`."""
        if n <= 0 or not self.products or not profile:
            return CandidateList()
        norm = math.sqrt(sum(w * w for w in profile.values()))
        skip = set(filters.exclude) | set(hidden)
        found: list[tuple[float, int]] = []
        for j, text in enumerate(self._texts):
            if not text or self.products[j] in skip or not _passes(filters, self, j):
                continue
            sim = sum(profile.get(t, 0.0) for t in text) / (norm * math.sqrt(len(text)))
            if sim >= MIN_SIMILARITY:
                found.append((sim, j))
        found.sort(key=lambda f: (-f[0], f[1]))
        picked = found[:n]
        sims = [s for s, _ in picked]
        return CandidateList(
            [self.products[j] for _, j in picked], sims, list(sims), [COLD_START] * len(picked)
        )


def _passes(f: ItemFilters, new: NewProducts, j: int) -> bool:
    if not f.takes_category(new._categories[j]):
        return False
    price = new._prices[j]
    if f.min_price is not None and (price is None or price < f.min_price):
        return False
    return not (f.max_price is not None and (price is None or price > f.max_price))
