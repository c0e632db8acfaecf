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
    # Its dense fit needs items^2 memory, so catalogs above graph_max_items use embeddings only.
    graph_neighbours: int = Field(default=100, ge=0, le=2000)
    graph_l2: float = Field(default=500.0, gt=0)
    graph_max_items: int = Field(default=20_000, ge=0, le=50_000)
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
    test_days: int = Field(default=14, ge=1, le=365)
    num_boost_round: int = Field(default=300, ge=1, le=5000)
    # LightGBM rankers fitted with seeds seed, seed+1, ... whose scores are averaged: the mean
    # cuts one ranker's seed-to-seed spread; served compiled, they stay cheap per request.
    ranker_models: int = Field(default=5, ge=1, le=10)
    # The ranker's trees boost from this weight x stage one's relative score instead of from
    # zero: they correct stage one's order and keep it where they find nothing better. 0 = from
    # zero.
    ranker_prior_weight: float = Field(default=1.0, ge=0, le=20)
    # Ranker labels as strong as the interaction (event weight, rating); False: 0/1.
    graded_labels: bool = True
    # Where the ranker is fitted: in the training process, or on a Dask cluster (lightgbm.dask)
    # whose scheduler is `scheduler`; unset, the worker's TRAINER_DASK_SCHEDULER.
    engine: Literal["local", "dask"] = "local"
    scheduler: DaskAddress | None = None
    # With engine='dask': build the ranker's training lists on the workers too (for data whose
    # lists do not fit one machine); the workers then need recsys installed.
    dask_rows: bool = False

    @model_validator(mode="after")
    def _scheduler(self) -> TrainParams:
        if self.scheduler is not None:
            if self.engine != "dask":
                raise ValueError("scheduler is only used with engine='dask'")
            if not 0 < int(self.scheduler.rsplit(":", 1)[1]) < 65536:
                raise ValueError(f"scheduler port out of range in {self.scheduler!r}")
        return self


# What each bundled dataset's own validation splits chose beyond TrainParams' defaults (never its
# test split), for every field a request leaves unset; the measurements: docs/decisions.md.
DATASET_PARAMS: dict[str, dict[str, float | bool]] = {
    "movielens-100k": {
        "graph_session_minutes": 1.0,
        "graph_label_weight": 20.0,
        "graph_neighbours": 2000,
    },
    "online-retail": {"graph_label_weight": 50.0, "graph_title_labels": True},
}


def with_dataset_defaults(dataset: str, params: TrainParams) -> TrainParams:
    """`params` with the dataset's own choices (DATASET_PARAMS) where it leaves a field unset: a
    request that names a value keeps it, and a request sent on (as JSON, every field set) keeps
    what it was resolved to."""
    preset = DATASET_PARAMS.get(dataset, {})
    unset = {k: v for k, v in preset.items() if k not in params.model_fields_set}
    if not unset:
        return params
    return TrainParams.model_validate({**params.model_dump(exclude_unset=True), **unset})
