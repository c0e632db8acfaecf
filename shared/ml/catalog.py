"""A model version's catalog: user and item ids, item titles, categories, prices, vocabularies."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from shared.ml.interactions import IdMap
from shared.ml.stage_two.features import FEATURE_NAMES


@dataclass(frozen=True)
class Catalog:
    users: IdMap
    items: IdMap
    titles: list[str | None]
    categories: list[str | None]
    prices: list[float | None]
    category_vocab: list[str]
    segment_vocab: list[str]

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "user_ids": self.users.ids,
                "item_ids": self.items.ids,
                "titles": self.titles,
                "categories": self.categories,
                "prices": self.prices,
                "category_vocab": self.category_vocab,
                "segment_vocab": self.segment_vocab,
                "feature_names": FEATURE_NAMES,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Catalog:
        raw = orjson.loads(data)
        if raw["feature_names"] != FEATURE_NAMES:
            raise ValueError("model was built with a different feature set than this code serves")
        return cls(
            IdMap(raw["user_ids"]),
            IdMap(raw["item_ids"]),
            raw["titles"],
            raw["categories"],
            raw["prices"],
            raw["category_vocab"],
            raw["segment_vocab"],
        )
