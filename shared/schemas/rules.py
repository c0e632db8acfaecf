"""Business rules a request (or the gateway's defaults) lays over a ranked list; applied by
`services/gateway/rules.py`."""

from __future__ import annotations

from pydantic import Field, model_validator

from shared.schemas.base import Id, Strict

# Rules that drop items (bury, caps, MMR) rank this many times k first, so that k remain.
FETCH_FACTOR = 3


class RuleEffect(Strict):
    """`explain=true`: what the rules did to an item (scores on the rules' 0-1 scale)."""

    score_before: float
    score_after: float
    applied: list[str]


class Pin(Strict):
    product: Id
    position: int = Field(ge=1, le=100, strict=True)  # 1-based


class Rules(Strict):
    boost_category: list[str] = Field(default_factory=list, max_length=20)
    bury_category: list[str] = Field(default_factory=list, max_length=20)
    boost_product: list[Id] = Field(default_factory=list, max_length=20)
    bury_product: list[Id] = Field(default_factory=list, max_length=20)
    max_per_category: int | None = Field(default=None, ge=1, le=100, strict=True)
    diversity: float = Field(default=0.0, ge=0.0, le=1.0, strict=True)  # MMR weight over categories
    pin: list[Pin] = Field(default_factory=list, max_length=10)

    @model_validator(mode="after")
    def _no_conflict(self) -> Rules:
        for what, up, down in (
            ("category", self.boost_category, self.bury_category),
            ("product", self.boost_product, self.bury_product),
        ):
            if both := sorted(set(up) & set(down)):
                raise ValueError(f"{what} both boosted and buried: {', '.join(both)}")
        positions = [p.position for p in self.pin]
        if len(set(positions)) < len(positions):
            raise ValueError("two products pinned at the same position")
        products = [p.product for p in self.pin]
        if len(set(products)) < len(products):
            raise ValueError("a product pinned twice")
        return self

    @property
    def active(self) -> bool:
        return self != Rules()

    def check_k(self, k: int) -> None:
        if outside := [f"{p.product}@{p.position}" for p in self.pin if p.position > k]:
            raise ValueError(f"pinned outside the list of k={k}: {', '.join(outside)}")

    def fetch_size(self, k: int) -> int:
        """How many ranked items to fetch so that the rules still leave k."""
        if not (self.bury_category or self.bury_product or self.max_per_category or self.diversity):
            return k
        return min(100, max(k * FETCH_FACTOR, k + 20))
