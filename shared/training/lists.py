"""The ranker's training and validation lists: label windows carved from the data, candidate
lists of stage one labelled by what each user took next.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from shared.datasets.base import Dataset
from shared.ml.interactions import DAY
from shared.ml.stage_one.serving import CandidateStage
from shared.ml.stage_two.features import pair_features
from shared.ml.stage_two.model import MAX_RELEVANCE, RankingData
from shared.training.splits import MSR_TRAIN_RATIO, held_out_strength, per_user_random_split


@dataclass(frozen=True)
class LabelWindow:
    """Ranker lists: candidates and features from `features` as of `as_of`, labels from later."""

    features: Dataset
    as_of: float
    labels: dict[str, dict[str, float]]  # user -> item taken next -> how strongly (rating)

    def sample(self, n: int, seed: int) -> LabelWindow:
        """The window with the labels of at most `n` of its users (a seeded sample)."""
        if len(self.labels) <= n:
            return self
        users = sorted(self.labels)
        kept = np.random.default_rng(seed).choice(len(users), n, replace=False)
        return replace(self, labels={users[i]: self.labels[users[i]] for i in sorted(kept)})


def temporal_windows(
    data: Dataset, as_of: float, label_days: int, n_train: int = 1
) -> tuple[list[LabelWindow], LabelWindow]:
    """Validation lists labelled in [T-W, T); train lists in [T-2W, T-W) and, with n_train > 1,
    in the windows before it. Features always come from before a window's labels."""
    ints, w = data.interactions, label_days * DAY

    def window(cut: float, end: float) -> LabelWindow:
        before = ints[ints["ts"] < cut]
        labels = held_out_strength(before, ints[(ints["ts"] >= cut) & (ints["ts"] < end)])
        return LabelWindow(replace(data, interactions=before), cut, labels)

    train = [window(as_of - (i + 2) * w, as_of - (i + 1) * w) for i in range(n_train)]
    return [t for t in train if t.labels], window(as_of - w, as_of)


def random_windows(
    data: Dataset, seed: int, n_folds: int = 1
) -> tuple[list[LabelWindow], LabelWindow]:
    """For data without a usable time order (random protocols): hold out a random quarter of each
    user's items as labels; a fifth of the users form the validation lists. With n_folds > 1 the
    other users' lists are drawn again from other random quarters (more lists for the ranker);
    those folds never see the validation users' held-out items, not even as features."""
    ints = data.interactions.reset_index(drop=True)  # row labels name rows below
    inner, held_out = per_user_random_split(ints, MSR_TRAIN_RATIO, seed + 1)
    labels = held_out_strength(inner, held_out)
    users = sorted(labels)
    valid_users = set(np.random.default_rng(seed).permutation(users)[: len(users) // 5].tolist())
    as_of = float(ints["ts"].max()) + 1

    def window(features: Dataset, labels: dict[str, dict[str, float]]) -> LabelWindow:
        kept = {u: v for u, v in labels.items() if u not in valid_users}
        return LabelWindow(features, as_of, kept)

    first = replace(data, interactions=inner)  # one object: the first fold and validation share it
    train = [window(first, labels)]
    hidden = held_out[held_out["user_id"].isin(valid_users)].index
    rest = ints.drop(index=hidden)
    for fold in range(1, n_folds):
        fold_inner, fold_out = per_user_random_split(rest, MSR_TRAIN_RATIO, seed + 1 + fold)
        fold_labels = held_out_strength(fold_inner, fold_out)
        train.append(window(replace(data, interactions=fold_inner), fold_labels))
    valid = {u: v for u, v in labels.items() if u in valid_users}
    return train, LabelWindow(first, as_of, valid)


def ranking_rows(
    cm: CandidateStage,
    labels: dict[str, dict[str, float]],
    n_candidates: int,
    graded: bool = False,
) -> RankingData:
    """Candidate lists of `cm`, labelled by the items each user took next: with `graded`, as
    strongly as they took them (a purchase above a view, five stars above three), else 0/1."""
    xs, ys = [], []
    for user_id, taken in labels.items():
        user = cm.catalog.users.get(user_id)
        products = sorted(taken)
        positives = cm.catalog.items.positions(products)
        relevance = np.array([relevance_label(taken[p]) if graded else 1 for p in products])
        c = cm.positions(user, n_candidates)
        y = np.zeros(len(c.items), dtype=np.float32)
        hit = np.isin(c.items, positives)
        if not hit.any():
            continue  # a list without a positive teaches lambdarank nothing
        where = {int(i): r for i, r in zip(positives.tolist(), relevance.tolist(), strict=True)}
        y[hit] = [where[int(i)] for i in c.items[hit]]
        xs.append(pair_features(cm.store, user, c.items, c.scores, c.similarity))
        ys.append(y)
    return RankingData.stack(xs, ys)


def relevance_label(strength: float) -> int:
    """Lambdarank wants small integer relevance: the rating rounded, at least 1, at most 30."""
    return int(min(max(round(strength), 1), MAX_RELEVANCE))
