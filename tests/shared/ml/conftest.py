"""Tiny datasets with planted structure for the ML unit tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shared.datasets.base import Dataset

DAY = 86_400


def blocks_dataset(n_users: int = 40, block: int = 10, seed: int = 0) -> Dataset:
    """Two user groups: group A takes only items P0..P9, group B only P10..P19, over 60 days.

    One extra item (P20) is popular with everybody, so popularity alone points the wrong way for
    per-group tastes.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        group = u % 2
        items = rng.choice(block, size=6, replace=False) + group * block
        days = np.sort(rng.uniform(0, 60, size=len(items) + 1))
        rows += [
            (f"U{u}", f"P{i}", 1.0, int(d * DAY)) for i, d in zip(items, days[:-1], strict=True)
        ]
        rows.append((f"U{u}", "P20", 1.0, int(days[-1] * DAY)))
    interactions = pd.DataFrame(rows, columns=["user_id", "product_id", "rating", "ts"])
    item_table = pd.DataFrame(
        {
            "product_id": [f"P{i}" for i in range(2 * block + 1)],
            "title": [f"item {i}" for i in range(2 * block + 1)],
            "category": ["a"] * block + ["b"] * block + ["a"],
            "price": np.linspace(5, 50, 2 * block + 1),
        }
    )
    users = pd.DataFrame(
        {
            "user_id": [f"U{u}" for u in range(n_users)],
            "age": [20.0 + u for u in range(n_users)],
            "segment": ["ga" if u % 2 == 0 else "gb" for u in range(n_users)],
        }
    )
    return Dataset("blocks", interactions, item_table, users)


@pytest.fixture
def blocks() -> Dataset:
    return blocks_dataset()
