"""Stage two: a LightGBM lambdarank model over candidate lists, in LightGBM's text format."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import lightgbm as lgb
import numpy as np

from shared.ml.stage_two.compiled import Predict, compile_boosters, lightgbm_predict
from shared.ml.stage_two.features import CATEGORICAL, COL, FEATURE_NAMES


@dataclass(frozen=True)
class RankingData:
    """Candidate lists stacked: X rows, binary labels, group sizes (one group per user)."""

    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray

    @staticmethod
    def stack(xs: list[np.ndarray], ys: list[np.ndarray]) -> RankingData:
        if not xs:
            return RankingData(
                np.empty((0, len(FEATURE_NAMES)), np.float32), np.empty(0), np.empty(0, np.int64)
            )
        x = np.vstack(xs)
        # An unknown category or segment is -1 in the features (as served). LightGBM reads a
        # negative category as missing, and says so in a warning on every fit; NaN is the same
        # missing value to it (the same trees: checked on Online Retail), without the warning.
        cats = [COL[name] for name in CATEGORICAL]
        codes = x[:, cats]
        codes[codes < 0] = np.nan
        x[:, cats] = codes
        return RankingData(x, np.concatenate(ys), np.array([len(y) for y in ys]))

    @staticmethod
    def concat(parts: list[RankingData]) -> RankingData:
        if not parts:
            return RankingData.stack([], [])
        x = np.vstack([p.x for p in parts])
        return RankingData(
            x, np.concatenate([p.y for p in parts]), np.concatenate([p.groups for p in parts])
        )

    @property
    def graded(self) -> bool:
        """Whether any label is above 1 (else graded and 0/1 labels are the same lists)."""
        return bool(len(self.y)) and float(self.y.max()) > 1

    def binary(self) -> RankingData:
        """The same lists with 0/1 labels: taken or not, however strongly."""
        return RankingData(self.x, (self.y > 0).astype(self.y.dtype), self.groups)


log = logging.getLogger(__name__)

# Between the members of an averaged ranker in its text artifact (a line no LightGBM model has).
ENSEMBLE_SEPARATOR = "\n#-- recsys ranker ensemble member --#\n"
# The artifact's first line when the trees boost from stage one's score (absent: from zero).
PRIOR_HEADER = "#-- recsys ranker prior weight "
PRIOR_FEATURE = "cand_score_rel"


def stage_one_prior(x: np.ndarray, weight: float) -> np.ndarray:
    """The score the trees start from: `weight` x stage one's score relative to the list's best,
    clipped to [-1, 1] (a list whose best score is near zero must not blow it up). Training
    (LightGBM's init_score) and serving add the same, so the trees learn a correction to stage
    one's order instead of a whole new one, and keep it where they find nothing better."""
    rel = np.nan_to_num(np.asarray(x[:, COL[PRIOR_FEATURE]], dtype=np.float64))
    out: np.ndarray = weight * np.clip(rel, -1.0, 1.0)
    return out


class RankerEnsemble:
    """One LightGBM booster, or several (different seeds) whose scores are averaged: the
    members' seed-to-seed spread is larger than most recipe changes, and the mean cuts it.
    With no booster at all the ranker steps aside: the score is stage one's prior alone, so
    stage one's order is served (what training chooses where the trees do not beat it)."""

    def __init__(self, *boosters: lgb.Booster, prior_weight: float = 0.0) -> None:
        self.boosters = list(boosters)
        self.prior_weight = prior_weight
        for b in self.boosters:
            names = b.feature_name()
            if names != FEATURE_NAMES:
                # Training and serving must agree on features; refuse a model built with other code.
                raise ValueError(f"ranker features {names} differ from this code's {FEATURE_NAMES}")
        self._predict: list[Predict] = [lightgbm_predict(b) for b in self.boosters]
        self.native_members = 0

    def compile(self) -> int:
        """Predict with native code compiled from each member where that works (the same
        scores at a fifth of the CPU per request); returns how many members were compiled.
        Takes seconds (a child process compiles): call it off the event loop."""
        categorical = [FEATURE_NAMES.index(name) for name in CATEGORICAL]
        done = 0
        for i, compiled in enumerate(compile_boosters(self.boosters, categorical)):
            if compiled is not None:
                self._predict[i] = compiled  # one reference swap: same scores either way
                done += 1
        self.native_members = done
        log.info(
            "ranker: %d of %d members compiled to native code",
            self.native_members,
            len(self.boosters),
        )
        return self.native_members

    @property
    def booster(self) -> lgb.Booster:
        """The first member: the one that scores every row, and the only one by default."""
        return self.boosters[0]

    @classmethod
    def average(cls, members: list[RankerEnsemble]) -> RankerEnsemble:
        weights = {m.prior_weight for m in members}
        if len(weights) != 1:
            raise ValueError(f"members boost from different stage-one priors: {sorted(weights)}")
        return cls(*(b for m in members for b in m.boosters), prior_weight=weights.pop())

    def score(self, x: np.ndarray) -> np.ndarray:
        """The members' mean score. With several members, as a cascade: the first scores every
        row, the others only its best CASCADE_ROWS, which then rank above the rest (an answer
        of k <= CASCADE_ROWS items is the full ensemble's order at a fraction of its CPU)."""
        x = np.ascontiguousarray(x, dtype=np.float64)  # once, not once per member
        return self._cascade(x, np.array([len(x)]), self._predict)

    def score_lists(self, x: np.ndarray, sizes: np.ndarray) -> list[np.ndarray]:
        """`score` of each list of `x` (consecutive rows, `sizes` of them each), one array per
        list: for offline scoring of many lists (evaluation, tuning), where one LightGBM call
        per member on every core costs about half as much as one single-threaded call per
        list. The same scores (each row's prediction does not depend on the others)."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        sizes = np.asarray(sizes, dtype=np.int64)
        every_core = [partial(_predict_on_every_core, b) for b in self.boosters]
        return np.split(self._cascade(x, sizes, every_core), np.cumsum(sizes)[:-1])

    def _cascade(self, x: np.ndarray, sizes: np.ndarray, predict: Sequence[Predict]) -> np.ndarray:
        prior = stage_one_prior(x, self.prior_weight)
        if not self.boosters:
            return prior
        first: np.ndarray = predict[0](x) + prior
        if len(self.boosters) == 1 or not len(first):
            return first
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        tops = [
            start + np.argsort(-first[start : start + size], kind="stable")[:CASCADE_ROWS]
            for start, size in zip(starts.tolist(), sizes.tolist(), strict=True)
        ]
        top = np.concatenate(tops)
        mean = first[top].copy()
        rows = x[top]
        for member in predict[1:]:
            mean += member(rows)
        mean /= len(self.boosters)
        if self.prior_weight:
            mean += prior[top] * (1 - 1 / len(self.boosters))  # every member starts from it
        out = np.empty_like(first)
        at = 0
        for start, size, best in zip(starts.tolist(), sizes.tolist(), tops, strict=True):
            if not size:
                continue
            mine = mean[at : at + len(best)]
            at += len(best)
            span = slice(start, start + size)
            # the rest below every top row
            out[span] = first[span] - (first[span].max() - mine.min()) - 1.0
            out[best] = mine
        return out

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Per-feature contributions to each raw score, last column the bias (SHAP values; the
        mean over the members, as the score is; the stage-one prior counts for its feature)."""
        parts = [
            np.asarray(b.predict(x, pred_contrib=True, num_threads=1), dtype=np.float64)
            for b in self.boosters
        ] or [np.zeros((len(x), len(FEATURE_NAMES) + 1))]
        out: np.ndarray = np.mean(parts, axis=0) if len(parts) > 1 else parts[0]
        out[:, COL[PRIOR_FEATURE]] += stage_one_prior(x, self.prior_weight)
        return out

    @property
    def best_iteration(self) -> int:
        if not self.boosters:
            return 0
        return int(self.booster.best_iteration or self.booster.current_iteration())

    @property
    def valid_ndcg(self) -> float:
        """The members' mean best validation NDCG@10 (NaN without validation lists)."""
        scores = [b.best_score.get("valid_0", {}).get("ndcg@10", np.nan) for b in self.boosters]
        return float(np.mean(scores)) if scores else float("nan")

    def to_text(self) -> str:
        trees = ENSEMBLE_SEPARATOR.join(str(b.model_to_string()) for b in self.boosters)
        if not self.prior_weight:
            return trees  # plain LightGBM text for a single member, as before priors existed
        return f"{PRIOR_HEADER}{self.prior_weight!r} --#\n{trees}"

    @classmethod
    def from_text(cls, text: str) -> RankerEnsemble:
        prior_weight = 0.0
        if text.startswith(PRIOR_HEADER):
            header, _, text = text.partition("\n")
            value = header[len(PRIOR_HEADER) :].removesuffix(" --#")
            try:
                prior_weight = float(value)
            except ValueError:
                raise ValueError(f"ranker artifact: unreadable prior weight {value!r}") from None
            if not np.isfinite(prior_weight):
                raise ValueError(f"ranker artifact: prior weight {value!r} is not finite")
        parts = text.split(ENSEMBLE_SEPARATOR) if text.strip() else []  # none: stepped aside
        boosters = [lgb.Booster(model_str=part) for part in parts]
        return cls(*boosters, prior_weight=prior_weight)


def _predict_on_every_core(booster: lgb.Booster, x: np.ndarray) -> np.ndarray:
    return np.asarray(booster.predict(x), dtype=np.float64)  # LightGBM's default: every core


# Rows the second and later members of an averaged ranker re-score (the first member's best).
CASCADE_ROWS = 50

# Graded labels run 0..MAX_RELEVANCE; their gain grows linearly, not LightGBM's default 2^l - 1,
# so a five-star item counts five times a one-star one, not thirty-one times.
MAX_RELEVANCE = 30

# Rounds without a better validation NDCG@10 before training stops (the Dask engine applies the
# same rule to its validation curve).
EARLY_STOPPING_ROUNDS = 30


def ranker_params(seed: int, num_leaves: int = 15) -> dict[str, object]:
    """LightGBM parameters of the ranker, shared by local and distributed (Dask) training."""
    return {
        "objective": "lambdarank",
        "metric": "ndcg",
        "eval_at": [10],
        "learning_rate": 0.05,
        "num_leaves": num_leaves,
        "min_data_in_leaf": 100,  # small, regularised trees: chosen on validation splits
        "feature_fraction": 0.9,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambdarank_truncation_level": 20,
        "label_gain": list(range(MAX_RELEVANCE + 1)),
        "seed": seed,
        "num_threads": 2,
        "verbosity": -1,
    }


def fit_ranker(
    train: RankingData,
    valid: RankingData,
    num_boost_round: int,
    seed: int,
    prior_weight: float = 0.0,
    num_leaves: int = 15,
) -> RankerEnsemble:
    """Lambdarank on train lists, early-stopped on NDCG@10 of the later validation window;
    the trees boost from `stage_one_prior` (0: from zero)."""
    params = ranker_params(seed, num_leaves)

    def dataset(d: RankingData, reference: lgb.Dataset | None = None) -> lgb.Dataset:
        return lgb.Dataset(
            d.x,
            label=d.y,
            group=d.groups,
            feature_name=FEATURE_NAMES,
            categorical_feature=CATEGORICAL,
            reference=reference,
            free_raw_data=False,
            init_score=stage_one_prior(d.x, prior_weight) if prior_weight else None,
        )

    train_set = dataset(train)
    callbacks: list[Callable[..., Any]] = []
    valid_sets = []
    if len(valid.groups) and valid.y.sum() > 0:
        valid_sets = [dataset(valid, train_set)]
        callbacks.append(lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False))
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=num_boost_round,
        valid_sets=valid_sets,
        callbacks=callbacks,
    )
    return RankerEnsemble(booster, prior_weight=prior_weight)
