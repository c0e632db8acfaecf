"""Train/test splits of the evaluation protocols (see CONTRACT.md), on the canonical tables.

A `Split` holds what models may learn from and, per user, the held-out items that count as
relevant: never items the user already has in the training part.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from shared.datasets.base import Dataset
from shared.ml.interactions import DAY

MSR_SEED = 42
MSR_TRAIN_RATIO = 0.75


@dataclass(frozen=True)
class Split:
    train: Dataset
    truth: dict[str, set[str]]
    protocol: str
    note: str


def held_out_strength(train: pd.DataFrame, test: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per user with history in train: test items they did not have in train, each with its
    strongest rating in test (an event's type weight, a star rating, or 1 for plain positives)."""
    keys = ["user_id", "product_id"]
    test = test[test["user_id"].isin(set(train["user_id"]))]
    had = train[keys].drop_duplicates()
    new = test[[*keys, "rating"]].merge(had, on=keys, how="left", indicator=True)
    best = new[new["_merge"] == "left_only"].groupby(keys, sort=False)["rating"].max()
    truth: dict[str, dict[str, float]] = {}
    for (user, item), rating in zip(best.index, best.to_numpy(dtype=float), strict=True):
        truth.setdefault(str(user), {})[str(item)] = float(rating)
    return truth


def held_out_truth(train: pd.DataFrame, test: pd.DataFrame) -> dict[str, set[str]]:
    """Per user with history in train: test items they did not have in train."""
    return {user: set(items) for user, items in held_out_strength(train, test).items()}


def temporal_split(data: Dataset, test_days: int) -> Split:
    """Interactions in the last `test_days` are the test set; users on both sides are evaluated."""
    ints = data.interactions
    cut = float(ints["ts"].max()) + 1 - test_days * DAY
    train, test = ints[ints["ts"] < cut], ints[ints["ts"] >= cut]
    start = pd.Timestamp(cut, unit="s")
    note = f"temporal: the last {test_days} days (from {start:%Y-%m-%d}) are the test set"
    return Split(replace(data, interactions=train), held_out_truth(train, test), "temporal", note)


def per_user_random_split(
    interactions: pd.DataFrame, ratio: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each user's rows shuffled with one seeded generator, the first `ratio` share to train
    (rounded as Microsoft Recommenders' python_stratified_split does)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(interactions))
    shuffled = interactions.iloc[order]
    rank = shuffled.groupby("user_id", sort=False).cumcount().to_numpy()
    size = shuffled.groupby("user_id", sort=False)["user_id"].transform("size").to_numpy()
    in_train = rank < np.round(size * ratio)
    return shuffled[in_train].sort_values("ts", kind="stable"), shuffled[~in_train]


def msr_split(data: Dataset, ratio: float = MSR_TRAIN_RATIO, seed: int = MSR_SEED) -> Split:
    """Microsoft Recommenders' ML-100K protocol: per-user stratified random 75/25, seed 42."""
    train, test = per_user_random_split(data.interactions, ratio, seed)
    note = f"msr: per-user random {ratio:.0%}/{1 - ratio:.0%} split, seed {seed}, binary relevance"
    return Split(replace(data, interactions=train), held_out_truth(train, test), "msr", note)
