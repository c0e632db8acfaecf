"""Training's knobs: `TrainParams`, the recipe of one training run, and its defaults.

Why each default is what it is, with the measurements: docs/decisions.md.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

# A Dask scheduler: [tcp:// | tls://]host:port, host a name, IPv4 or [IPv6] address.
DaskAddress = Annotated[
    str,
    StringConstraints(
        max_length=262,
        pattern=r"^(?:(?:tcp|tls)://)?(?:[A-Za-z0-9](?:[A-Za-z0-9.\-]{0,251}[A-Za-z0-9])?"
        r"|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$",
    ),
]


class TrainParams(BaseModel):
    """Knobs of one training run; defaults suit the synthetic demo data."""

    model_config = ConfigDict(extra="forbid")

    n_users: int = Field(default=600, ge=10, le=200_000)
    n_products: int = Field(default=300, ge=10, le=100_000)
    n_days: int = Field(default=120, ge=30, le=3650)
    # Synthetic only: catalog items nobody took yet (reachable through their content).
    n_new_products: int = Field(default=10, ge=0, le=10_000)
    seed: int = 42
    embedding_dim: int = Field(default=32, ge=2, le=512)
    # Learned item-neighbour graph (EASE weights, top-N per item) beside embedding k-NN; 0 = off.
    # EASE's dense fit costs items^3 time and items^2 memory: on a catalog above graph_max_items
    # it is fitted over the graph_max_items most-taken items and the other items' rows are
    # item-kNN cosine (docs/training.md); the EASE baseline of training stops there too. Where
    # the tuner finds EASE over every item better on validation, it raises this to the catalog's.
    graph_neighbours: int = Field(default=100, ge=0, le=2000)
    graph_l2: float = Field(default=500.0, gt=0)
    graph_max_items: int = Field(default=10_000, ge=0, le=50_000)
    # EASE with input dropout (its closed form, EDLAE): each item's penalty is graph_l2 plus
    # graph_dropout / (1 - graph_dropout) x how often it was taken; 0 = plain EASE. Opt-in, not
    # searched: within noise end to end here (docs/decisions.md, 2026-12-05 fourth).
    graph_dropout: float = Field(default=0.0, ge=0, le=0.9)
    # What the graph's weights are: EASE (dense closed form, over at most graph_max_items items and
    # what memory allows) or item-kNN cosine (sparse, any size); "ease" falls back to item-kNN
    # where EASE cannot run. "als": stage one scores by ALS (implicit-feedback matrix
    # factorization, the user's vector solved per request from what they took), an item-kNN
    # graph of graph_neighbours beside it only to say which of their items an answer is like.
    graph_kind: Literal["ease", "item_knn", "als"] = "ease"
    # ALS as stage one (graph_kind "als"): factors, L2 of each solve, confidence 1 + alpha x
    # log(1 + strength) of a taken item, sweeps of the fit. The defaults are the ALS baseline's.
    als_factors: int = Field(default=64, ge=2, le=512)
    als_regularization: float = Field(default=0.05, gt=0, le=1000)
    als_alpha: float = Field(default=10.0, ge=0, le=1000)
    als_iterations: int = Field(default=15, ge=1, le=100)
    # Two items one user took in one session (no gap longer than graph_session_minutes between
    # their times) count graph_session_weight more in the graph; 0 = off (it helps some data and
    # costs other: docs/decisions.md).
    graph_session_minutes: float = Field(default=0.0, ge=0, le=525_600)
    graph_session_weight: float = Field(default=2.0, gt=0, le=10)
    # Each item label (its category, each of its tags) counts as this many more users who took
    # all the items carrying it; 0 = off (data-dependent: docs/decisions.md).
    graph_label_weight: float = Field(default=0.0, ge=0, le=100_000)
    # Each word of an item's title (4+ letters) is one more label: a shop without categories
    # still names its products ("... LUNCH BAG", "... T-LIGHT HOLDER"). Off by default.
    graph_title_labels: bool = False
    # A low-rank filter of that many dimensions added to the graph's scores (0 = off), its
    # scores spread graph_lowrank_weight times as widely as the graph's: it holds the catalog's
    # main directions of taste, which a graph pruned to a few neighbours per item cannot.
    graph_lowrank: int = Field(default=32, ge=0, le=256)
    graph_lowrank_weight: float = Field(default=0.5, ge=0, le=10)
    n_candidates: int = Field(default=100, ge=10, le=2000)
    label_days: int = Field(default=14, ge=1, le=365)
    # Ranker training windows stacked back in time (more lists, same features code).
    train_windows: int = Field(default=1, ge=1, le=12)
    # Data without a usable time order: how many random held-out quarters build ranker lists.
    label_folds: int = Field(default=3, ge=1, le=12)
    # Candidate lists (one per user and label window) the final ranker trains on, at most: past
    # it each window keeps a seeded sample of its users, an equal share each (0 = every list).
    # Training's time and memory grow with the lists; random label folds repeat the same users,
    # so they lose least. Not applied to `dask_rows` (lists too big for one machine).
    ranker_max_lists: int = Field(default=60_000, ge=0, le=100_000_000)
    test_days: int = Field(default=14, ge=1, le=365)
    num_boost_round: int = Field(default=300, ge=1, le=5000)
    # LightGBM rankers fitted with seeds seed, seed+1, ... whose scores are averaged: the mean
    # cuts one ranker's seed-to-seed spread; served compiled, they stay cheap per request.
    ranker_models: int = Field(default=5, ge=1, le=10)
    # Leaves per tree of the ranker (small, regularised trees by default).
    ranker_leaves: int = Field(default=15, ge=2, le=255)
    # False: the ranker steps aside and stage one's order is served (the tuner chooses this where
    # the ranker does not beat stage one alone on validation).
    use_ranker: bool = True
    # The ranker's trees boost from this weight x stage one's relative score instead of from
    # zero: they correct stage one's order and keep it where they find nothing better. 0 = from
    # zero.
    ranker_prior_weight: float = Field(default=1.0, ge=0, le=20)
    # Seconds training may spend choosing the recipe on validation splits carved from the training
    # data (Optuna; shared/training/tuning.py); 0 = these fixed values, no search.
    tune_budget_seconds: float = Field(default=180.0, ge=0, le=86_400)
    # Ranker labels as strong as the interaction (event weight, rating); False: 0/1.
    graded_labels: bool = True
    # Where the ranker is fitted: in the training process, or on a Dask cluster (lightgbm.dask)
    # whose scheduler is `scheduler`; unset, the worker's TRAINER_DASK_SCHEDULER.
    engine: Literal["local", "dask"] = "local"
    scheduler: DaskAddress | None = None
    # With engine='dask': build the ranker's training lists on the workers too (for data whose
    # lists do not fit one machine); the workers then need recsys installed.
    dask_rows: bool = False
    # A control for online experiments, not a recipe: with a seed, the products of the training
    # interactions are permuted among their rows (seeded) before anything is fitted. Every
    # product keeps its count and every user theirs; who took what is gone, so the model knows
    # popularity and nothing personal: a deliberately weak version to test an A/B with
    # (benchmarks/simulator.py, docs/benchmarks.md). None = the data as it is.
    shuffle_links_seed: int | None = None

    @property
    def lists_on_cluster(self) -> bool:
        """Whether the ranker's training lists are built on the Dask workers (`dask_rows`)."""
        return self.engine == "dask" and self.dask_rows

    @model_validator(mode="after")
    def _scheduler(self) -> TrainParams:
        if self.scheduler is not None:
            if self.engine != "dask":
                raise ValueError("scheduler is only used with engine='dask'")
            if not 0 < int(self.scheduler.rsplit(":", 1)[1]) < 65536:
                raise ValueError(f"scheduler port out of range in {self.scheduler!r}")
        return self
