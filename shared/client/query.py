"""How the list routes' filters and /recommend's business rules travel: as query parameters,
lists as repeated parameters (`category=a&category=b`), excluded ids comma-separated, pins as
PRODUCT@POSITION. What is not given is left out, so the gateway's defaults apply."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

Value = str | int | float | list[str]
Query = dict[str, Value]
# One category, or several (items of any of them).
Categories = str | Sequence[str] | None


def listed(name: str, values: Sequence[str]) -> list[str]:
    """`values` as a list; one string is refused, since it is a Sequence[str] too ("P1" would
    read as "P" and "1")."""
    if isinstance(values, str):
        raise TypeError(f"{name} takes a list of strings, not one string")
    return list(values)


def filters(
    category: Categories,
    min_price: float | None,
    max_price: float | None,
    exclude: Sequence[str],
) -> Query:
    """The filters every list route takes."""
    excluded = listed("exclude", exclude)
    if any("," in product for product in excluded):  # the separator: no id holds one
        raise ValueError("a product id cannot contain ',' (exclude is comma-separated)")
    query: Query = {}
    if category is not None:
        query["category"] = [category] if isinstance(category, str) else list(category)
    if min_price is not None:
        query["min_price"] = min_price
    if max_price is not None:
        query["max_price"] = max_price
    if excluded:
        query["exclude"] = ",".join(excluded)
    return query


def rules(
    boost_category: Sequence[str],
    bury_category: Sequence[str],
    boost_product: Sequence[str],
    bury_product: Sequence[str],
    max_per_category: int | None,
    diversity: float | None,
    pin: Mapping[str, int] | None,
) -> Query:
    """/recommend's business rules for this request (none given: the gateway's defaults)."""
    query: Query = {}
    for name, values in (
        ("boost_category", boost_category),
        ("bury_category", bury_category),
        ("boost_product", boost_product),
        ("bury_product", bury_product),
    ):
        if given := listed(name, values):
            query[name] = given
    if max_per_category is not None:
        query["max_per_category"] = max_per_category
    if diversity is not None:
        query["diversity"] = diversity
    if pin:
        # The gateway splits at the last '@': a product id may hold one (an e-mail address).
        query["pin"] = [f"{product}@{position}" for product, position in pin.items()]
    return query
