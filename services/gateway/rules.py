"""Business rules over a ranked list: boost or bury categories and products, diversity (at most
N per category, or MMR), products pinned at positions. Per request (query parameters) or as
defaults (`GATEWAY_DEFAULT_RULES`); each item a rule moved or added says so in its `reason`,
and `explain=true` shows its score before and after the rules.

Pure: the pipeline fetches a longer list (`fetch_size`) and `apply` cuts it to k.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from shared.schemas.base import ID_MAX_CHARS
from shared.schemas.rules import RuleEffect, Rules
from shared.schemas.serving import Explanation, RecommendedItem

Label = Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]
Ids = Annotated[list[str] | None, Query(max_length=20)]


def _with(
    item: RecommendedItem, applied: list[str], before: float, after: float, explain: bool
) -> RecommendedItem:
    if not applied:
        return item
    update: dict[str, object] = {"reason": f"{item.reason};{','.join(applied)}"}
    if explain:
        base = item.explanation or Explanation(seed=None, contributions={}, bias=0.0)
        effect = RuleEffect(score_before=before, score_after=after, applied=applied)
        update["explanation"] = base.model_copy(update={"rules": effect})
    return item.model_copy(update=update)


def apply(
    items: list[RecommendedItem],
    rules: Rules,
    k: int,
    pinned: dict[str, RecommendedItem],
    explain: bool = False,
) -> list[RecommendedItem]:
    """The first k of `items` under `rules`. `pinned`: the pinned products as answer items
    (from the ranked list or looked up), those missing (unknown, sold out) are left out."""
    if not rules.active:
        return items[:k]
    pins = {p.product for p in rules.pin}
    pool = [i for i in items if i.product not in pins]

    # rank score after boost/bury: a tier (boosted 1, plain 0, buried -1), then the score
    def tier(i: RecommendedItem) -> int:
        if i.product in rules.bury_product or i.category in rules.bury_category:
            return -1
        if i.product in rules.boost_product or i.category in rules.boost_category:
            return 1
        return 0

    tiers = {i.product: tier(i) for i in pool}
    order = sorted(range(len(pool)), key=lambda j: -tiers[pool[j].product])  # stable
    ordered = [pool[j] for j in order]
    scores = [i.score for i in ordered]
    lo, hi = (min(scores), max(scores)) if scores else (0.0, 1.0)
    span = (hi - lo) or 1.0
    picked: list[RecommendedItem] = []
    after: dict[str, float] = {}
    counts: dict[str | None, int] = {}
    left = list(ordered)
    while left and len(picked) < k - len(rules.pin):
        best_j, best = 0, float("-inf")
        for j, cand in enumerate(left):
            capped = rules.max_per_category and cand.category is not None
            if capped and counts.get(cand.category, 0) >= (rules.max_per_category or 0):
                continue
            rel = (cand.score - lo) / span + tiers[cand.product] * 2.0
            same = 1.0 if cand.category is not None and counts.get(cand.category) else 0.0
            value = (1 - rules.diversity) * rel - rules.diversity * same
            if value > best:
                best_j, best = j, value
            if not rules.diversity:
                break  # in order: the first allowed one is the best
        if best == float("-inf"):
            break  # every one left is over its category's cap
        cand = left.pop(best_j)
        picked.append(cand)
        after[cand.product] = best
        counts[cand.category] = counts.get(cand.category, 0) + 1
    out: list[RecommendedItem] = []
    natural = {i.product: n for n, i in enumerate(items)}
    for n, item in enumerate(picked):
        applied = []
        if tiers[item.product] == 1:
            applied.append("boosted")
        elif tiers[item.product] == -1:
            applied.append("buried")
        if natural[item.product] != n and not applied:
            applied.append("moved")  # by the rules around it (a cap, MMR, others boosted)
        out.append(_with(item, applied, item.score, after[item.product], explain))
    for pin in sorted(rules.pin, key=lambda p: p.position):
        if (found := pinned.get(pin.product)) is not None:
            at = min(pin.position - 1, len(out))
            marks = [] if found.reason == "pinned" else ["pinned"]  # looked up only to be pinned
            out.insert(at, _with(found, marks, found.score, found.score, explain))
    return out[:k]


async def query_rules(
    boost_category: Annotated[list[Label] | None, Query(max_length=20)] = None,
    bury_category: Annotated[list[Label] | None, Query(max_length=20)] = None,
    boost_product: Ids = None,
    bury_product: Ids = None,
    max_per_category: Annotated[int | None, Query(ge=1, le=100)] = None,
    diversity: Annotated[float | None, Query(ge=0.0, le=1.0, description="MMR weight")] = None,
    pin: Annotated[
        list[str] | None,
        Query(max_length=10, description="PRODUCT@POSITION, 1-based; repeat it"),
    ] = None,
) -> Rules | None:
    """The request's rules; None when it sets none (the configured defaults apply)."""
    given = {
        "boost_category": boost_category,
        "bury_category": bury_category,
        "boost_product": boost_product,
        "bury_product": bury_product,
        "max_per_category": max_per_category,
        "diversity": diversity,
    }
    fields: dict[str, object] = {name: v for name, v in given.items() if v is not None}
    try:
        if pin:
            fields["pin"] = [_pin(p) for p in pin]
        return Rules.model_validate(fields) if fields else None
    except ValidationError as exc:
        errors = [
            {"loc": ("query", *e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()
        ]
        raise RequestValidationError(errors) from exc
    except ValueError as exc:  # a pin that is not PRODUCT@POSITION
        error = {"loc": ("query", "pin"), "msg": str(exc), "type": "value_error"}
        raise RequestValidationError([error]) from exc


def _pin(text: str) -> dict[str, object]:
    product, _, position = text.rpartition("@")
    if not product or not position.isdigit() or len(product) > ID_MAX_CHARS:
        raise ValueError(f"pin must be PRODUCT@POSITION, not {text!r}")
    return {"product": product, "position": int(position)}


RulesDep = Annotated[Rules | None, Depends(query_rules)]
