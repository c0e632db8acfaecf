"""Every payload that crosses a process boundary (HTTP, Celery, Redis) is one model here."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, TypeVar

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    StringConstraints,
    field_validator,
    model_validator,
)

# Ids come from shops' catalogs and URLs: keep them printable, bounded and free of separators.
ID_PATTERN = r"^[A-Za-z0-9_.:\-]+$"
Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=ID_PATTERN)]
# Product codes are the shop's own ("BANK CHARGES", "85123A", "ISBN 978-3-16"): any printable
# text without commas (the `exclude=` separator) or surrounding spaces, at most 64 characters.
PRODUCT_ID_PATTERN = r"^[^\s,\x00-\x1f\x7f](?:[^,\x00-\x1f\x7f]*[^\s,\x00-\x1f\x7f])?$"
ProductId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=PRODUCT_ID_PATTERN)
]

DatasetName = Literal["synthetic", "online-retail", "movielens-100k", "csv"]
JobState = Literal["PENDING", "PROGRESS", "SUCCESS", "FAILURE"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


MAX_CANDIDATES = 2000
C = TypeVar("C", bound=BaseModel)


def same_lengths(model: C, *columns: str) -> C:
    """`model` if its list fields `columns` (entry i of each belongs together) are equally long."""
    if len({len(getattr(model, c)) for c in columns}) > 1:
        raise ValueError(f"{', '.join(columns[:-1])} and {columns[-1]} differ in length")
    return model


class CandidateListPayload(Strict):
    """Stage one's candidates, best first, as four columns: entry i of each is candidate i.

    Columns rather than a list of objects because the ranker validates a few hundred of them on
    every request: four typed lists cost pydantic a third of what as many small models do
    (50 vs 180 us for 200 candidates), in 40 % fewer bytes on the wire.
    """

    products: list[ProductId] = Field(max_length=MAX_CANDIDATES)
    scores: list[float] = Field(max_length=MAX_CANDIDATES)
    similarity: list[float] = Field(max_length=MAX_CANDIDATES)  # embedding k-NN score
    reasons: list[str] = Field(max_length=MAX_CANDIDATES)

    @model_validator(mode="after")
    def _same_length(self) -> CandidateListPayload:
        return same_lengths(self, "products", "scores", "similarity", "reasons")


class ItemFilters(Strict):
    """Constraints every recommended item must meet (GET /recommend query parameters)."""

    category: str | None = Field(default=None, min_length=1, max_length=64)
    min_price: float | None = Field(default=None, ge=0)
    max_price: float | None = Field(default=None, ge=0)
    exclude: list[ProductId] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _price_range(self) -> ItemFilters:
        if (
            self.min_price is not None
            and self.max_price is not None
            and self.min_price > self.max_price
        ):
            raise ValueError("min_price must not exceed max_price")
        return self


class LiveHistory(Strict):
    """What a user took since the model was trained (live events of the training data's kind,
    `RECSYS_HISTORY_EVENT_TYPE`), per product: how often and when last (epoch seconds). Stage
    one passes it on so that the ranker's user features count it as history."""

    products: list[ProductId] = Field(min_length=1, max_length=1000)
    counts: list[int] = Field(max_length=1000)
    last_ts: list[FiniteFloat] = Field(max_length=1000)

    @model_validator(mode="after")
    def _columns(self) -> LiveHistory:
        same_lengths(self, "products", "counts", "last_ts")
        if min(self.counts) < 1:
            raise ValueError("counts must be >= 1")
        return self


class CandidateRequest(Strict):
    user: Id
    n: int = Field(default=200, ge=1, le=MAX_CANDIDATES)
    filters: ItemFilters = Field(default_factory=ItemFilters)
    # For users without history: their segment (country, occupation…) if the caller knows it.
    segment: str | None = Field(default=None, min_length=1, max_length=64)


class CandidateResponse(Strict):
    user: Id
    version: int
    known_user: bool
    candidates: CandidateListPayload
    live: LiveHistory | None = None  # left out when the user took nothing since training
    # The user's age where the training data tells it: answers in stage one's order (ranker
    # down) carry it as ranked answers do.
    user_age: float | None = None


class RankRequest(Strict):
    """POST /rank: stage one's answer for a user, to be ordered by the ranker of its version."""

    user: Id
    k: int = Field(ge=1, le=100)
    explain: bool = False
    stage_one: CandidateResponse

    @model_validator(mode="after")
    def _same_user(self) -> RankRequest:
        if self.stage_one.user != self.user:
            raise ValueError("stage_one answers another user")
        return self

    @property
    def version(self) -> int:
        return self.stage_one.version

    @staticmethod
    def forward(user: str, k: int, explain: bool, stage_one: bytes) -> bytes:
        """The request's JSON around stage one's answer as it came: the gateway does not parse
        200 candidates only to write them out again (the ranker validates them on arrival)."""
        head = orjson.dumps({"user": user, "k": k, "explain": explain})
        return head[:-1] + b',"stage_one":' + stage_one + b"}"


class Explanation(Strict):
    """Why an item is there: the history item that proposed it and the ranker's per-feature
    contributions (LightGBM pred_contrib), which with `bias` sum to the item's score."""

    seed: str | None
    contributions: dict[str, float]
    bias: float


class RecommendedItem(Strict):
    product: str
    score: float
    price: float | None
    age: float | None
    title: str | None = None
    category: str | None = None
    reason: str
    explanation: Explanation | None = None


class RankResponse(Strict):
    user: Id
    version: int
    items: list[RecommendedItem]


MAX_ITEM_LOOKUP = 100


class ItemsRequest(Strict):
    """POST /items on the candidate service: catalog details of products, by id. The gateway
    asks when the ranker failed, so that an answer in candidate order still shows titles and
    prices."""

    products: list[ProductId] = Field(min_length=1, max_length=MAX_ITEM_LOOKUP)


class CatalogItem(Strict):
    product: str
    title: str | None
    price: float | None
    category: str | None


class ItemsResponse(Strict):
    """The known products of an `ItemsRequest`, in its order (unknown ones left out)."""

    version: int
    items: list[CatalogItem]


class PopularResponse(Strict):
    """GET /popular on the candidate service: the most taken items of a version, with their
    titles and prices. The gateway caches it and answers with it when the candidate stage is
    down (degraded, flagged `X-Degraded: candidate`)."""

    version: int
    items: list[RecommendedItem]


EventType = Literal["view", "click", "add_to_cart", "purchase"]


class EventIn(Strict):
    """POST /events: something a user did with a product."""

    user: Id
    product: ProductId
    type: EventType
    ts: datetime | None = None  # when it happened; the gateway's clock if absent

    @field_validator("ts", mode="before")
    @classmethod
    def _date_time_text(cls, v: object) -> object:
        """An RFC 3339 date-time as the schema says, not pydantic's lax numbers or dates."""
        if v is None or isinstance(v, datetime):
            return v
        if isinstance(v, str) and len(v) > 10 and v[10] in "Tt ":
            try:
                datetime.fromisoformat(v)
            except ValueError:
                pass
            else:
                return v
        raise ValueError("ts must be a date-time like 2024-06-01T12:00:00Z")


class Event(Strict):
    """An accepted event as stored (stream entry and recent-history list)."""

    user: str
    product: str
    type: EventType
    ts: float  # unix seconds


class EventAccepted(Strict):
    accepted: Literal[True] = True
    id: str  # the Redis stream entry id


# A Dask scheduler: [tcp:// | tls://]host:port, host a name, IPv4 or [IPv6] address.
DaskAddress = Annotated[
    str,
    StringConstraints(
        max_length=262,
        pattern=r"^(?:(?:tcp|tls)://)?(?:[A-Za-z0-9](?:[A-Za-z0-9.\-]{0,251}[A-Za-z0-9])?"
        r"|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$",
    ),
]


class TrainParams(Strict):
    """Knobs of one training run; defaults suit the synthetic demo data."""

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
    # their times) count graph_session_weight more in the graph; 0 = off, the default: 1 minute
    # lifts MovieLens' validation 1.006 -> 1.033 x EASE and costs Online Retail's 1.148 -> 1.120 x
    # (three validation windows; docs/benchmarks.md).
    graph_session_minutes: float = Field(default=0.0, ge=0, le=525_600)
    graph_session_weight: float = Field(default=2.0, gt=0, le=10)
    # Each item label (its category, each of its tags) counts as this many more users who took
    # all the items carrying it; 0 = off, the default: 20 lifts MovieLens' validation (1.017 ->
    # 1.021 x EASE, 1.044 -> 1.049 x with sessions; two splits) and costs the synthetic demo
    # data's 1.9 % (docs/benchmarks.md); data without labels are unchanged.
    graph_label_weight: float = Field(default=0.0, ge=0, le=100_000)
    # Each word of an item's title (4+ letters) is one more label: a shop without categories
    # still names its products ("... LUNCH BAG", "... T-LIGHT HOLDER"). Off by default.
    graph_title_labels: bool = False
    # A low-rank filter of that many dimensions added to the graph's scores (0 = off), its
    # scores spread graph_lowrank_weight times as widely as the graph's: validation
    # MovieLens 0.969 -> 0.992 x EASE, Online Retail 1.165 -> 1.171 x (docs/benchmarks.md).
    graph_lowrank: int = Field(default=32, ge=0, le=256)
    graph_lowrank_weight: float = Field(default=0.5, ge=0, le=10)
    n_candidates: int = Field(default=100, ge=10, le=2000)
    label_days: int = Field(default=14, ge=1, le=365)
    # Ranker training windows stacked back in time (more lists, same features code).
    train_windows: int = Field(default=1, ge=1, le=12)
    # Data without a usable time order: how many random held-out quarters build ranker lists
    # (MovieLens validation 0.935 -> 0.953 x EASE from 1 to 3; docs/benchmarks.md).
    label_folds: int = Field(default=3, ge=1, le=12)
    test_days: int = Field(default=14, ge=1, le=365)
    num_boost_round: int = Field(default=300, ge=1, le=5000)
    # LightGBM rankers fitted with seeds seed, seed+1, ... whose scores are averaged: one
    # ranker's seed-to-seed spread (Online Retail validation 1.06-1.17 x EASE) is cut by the mean.
    # 5 lift Online Retail from 1.369 to 1.409 x EASE (docs/benchmarks.md); served compiled to
    # native code, five cost less CPU per request than one did with LightGBM's own predict.
    ranker_models: int = Field(default=5, ge=1, le=10)
    # The ranker's trees boost from this weight x stage one's relative score instead of from
    # zero: they correct stage one's order and keep it where they find nothing better
    # (validation vs EASE, 0 -> 1: MovieLens 0.992 -> 1.006 x, Online Retail 1.171 -> 1.207 x,
    # the demo data 0.995 -> 1.012 x; docs/benchmarks.md). 0 = from zero, as before.
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


# CSV header names: printable (no control characters, so they cannot forge log or error lines).
ColumnName = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")
]


class CsvOptions(Strict):
    """How to read a dataset="csv" file: which columns hold what, and an optional item table."""

    user_col: ColumnName = "user_id"
    item_col: ColumnName = "product_id"
    rating_col: ColumnName | None = None  # without it every row is a positive (rating 1.0)
    time_col: ColumnName | None = None  # unix seconds or datetime text; without it: row order
    # CSV with item_col plus any of title/category/price; relative to the data folder.
    items_path: str | None = Field(
        default=None, min_length=1, max_length=4096, pattern=r"^[^\x00-\x1f\x7f]+$"
    )

    @model_validator(mode="after")
    def _distinct_columns(self) -> CsvOptions:
        named = [c for c in (self.user_col, self.item_col, self.rating_col, self.time_col) if c]
        if len(set(named)) != len(named):
            raise ValueError(f"user/item/rating/time columns must differ, got {named}")
        return self


# What each bundled dataset's own validation splits chose beyond TrainParams' defaults (never its
# test split; docs/benchmarks.md), for every field a request leaves unset. MovieLens' ratings come
# in sittings (half of a user's consecutive ratings share their second) and its movies carry
# genres: sessions, genre labels and the unpruned graph lift its two validation splits from
# 1.006 / 1.027 to 1.034 / 1.069 x EASE. Online Retail has no categories, but its product
# names share words (LUNCH BAG, T-LIGHT HOLDER): as labels they lift its three validation
# windows from 1.207 / 1.097 / 1.139 to 1.270 / 1.165 / 1.205 x. Each costs other data
# (sessions: Online Retail's validation 6 %, labels: the demo data 1.9 %), so none is a
# global default.
DATASET_PARAMS: dict[str, dict[str, float | bool]] = {
    "movielens-100k": {
        "graph_session_minutes": 1.0,
        "graph_label_weight": 20.0,
        "graph_neighbours": 2000,
    },
    "online-retail": {"graph_label_weight": 50.0, "graph_title_labels": True},
}


class TrainRequest(Strict):
    dataset: DatasetName = "synthetic"
    # Relative to the data folder (RECSYS_DATA_DIR); API requests may not leave it.
    data_path: str | None = Field(default=None, max_length=4096)
    params: TrainParams = Field(default_factory=TrainParams)
    # Merge events ingested from POST /events into the training data (weights by event type).
    include_events: bool = False
    csv: CsvOptions | None = None  # only for dataset="csv"; None means CsvOptions() defaults

    @model_validator(mode="after")
    def _dataset_params(self) -> TrainRequest:
        """The dataset's own choices (DATASET_PARAMS) where `params` leaves a field unset: a
        request that names a value keeps it, and a request sent on (as JSON, every field set)
        keeps what it was resolved to."""
        preset = DATASET_PARAMS.get(self.dataset, {})
        unset = {k: v for k, v in preset.items() if k not in self.params.model_fields_set}
        if unset:
            self.params = TrainParams.model_validate(
                {**self.params.model_dump(exclude_unset=True), **unset}
            )
        return self


class TrainJobStatus(Strict):
    job_id: str
    state: JobState
    progress: float = Field(ge=0.0, le=1.0)
    stage: str | None = None
    model_version: int | None = None
    promoted: bool | None = None
    reason: str | None = None
    error: str | None = None


class TrainJobRecord(TrainJobStatus):
    """One job of GET /train (history): its status plus when it was submitted and ended."""

    submitted_at: datetime
    finished_at: datetime | None = None  # when it succeeded or failed; None while it runs
    dataset: str | None = None  # None until a worker has picked the job up


class TrainJobsResponse(Strict):
    jobs: list[TrainJobRecord]  # newest first


class TrainProgress(Strict):
    """Celery PROGRESS meta."""

    stage: str
    progress: float = Field(ge=0.0, le=1.0)


class TrainResult(Strict):
    """What the Celery task returns (its SUCCESS result)."""

    model_version: int
    promoted: bool
    reason: str
    metrics: dict[str, float]


class JobAccepted(Strict):
    job_id: str


class ArtifactInfo(Strict):
    sha256: str
    size: int


class EvaluationSummary(Strict):
    """A version's held-out evaluation, as the Evaluation page plots it: every model's ranking
    metrics at `k` (the two-stage model and its baselines, same users) and NDCG@K curves."""

    protocol: str
    k: int = Field(ge=1)
    n_users: int = Field(ge=0)
    models: dict[str, dict[str, float]]
    ndcg_curves: dict[str, list[float]] = Field(default_factory=dict)  # [K - 1] is NDCG@K


class ModelManifest(Strict):
    version: int
    created_at: datetime
    dataset: str
    params: dict[str, object] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    artifacts: dict[str, ArtifactInfo]
    evaluation: EvaluationSummary | None = None  # None for versions trained before it was kept


class ModelSummary(Strict):
    version: int
    created_at: datetime
    dataset: str
    metrics: dict[str, float]


class ModelsResponse(Strict):
    current: int | None
    versions: list[ModelSummary]


class ModelDetail(ModelSummary):
    """GET /models/{version}: one version's summary, how it was trained and evaluated."""

    current: bool
    params: dict[str, object]
    evaluation: EvaluationSummary | None


class ModelActivated(Strict):
    current: int


class ModelPublished(Strict):
    """Message on the registry's pub/sub channel whenever `current` moves."""

    version: int


class ServiceStats(Strict):
    """One service's serving route as its Prometheus metrics tell it, counted since it started.

    Latency buckets are cumulative, as Prometheus exposes them; two snapshots give the rate and
    the latency of the time between them (`shared.stats.window`).
    """

    service: str
    reachable: bool
    detail: str | None = None  # why it could not be scraped
    route: str  # the route measured: what the service is for (not /metrics, /healthz...)
    model_version: int | None = None  # the version it loaded last; None for the gateway
    requests: int = 0
    errors: int = 0  # 5xx answers
    bucket_bounds: list[float] = Field(default_factory=list)  # seconds, finite, ascending
    bucket_counts: list[int] = Field(default_factory=list)  # requests at or under each bound
    p50_seconds: float | None = None  # estimated from the buckets; None without requests
    p99_seconds: float | None = None
    degraded: dict[str, int] = Field(default_factory=dict)  # mode -> answers served degraded


class StatsResponse(Strict):
    """GET /stats: what the gateway and its two stages serve, and how fast."""

    collected_at: float  # unix seconds, the gateway's clock
    current: int | None  # the registry's current version (what every service should serve)
    services: list[ServiceStats]


class Health(Strict):
    status: Literal["ok"] = "ok"
    service: str
    version: int | None = None


class ErrorBody(Strict):
    detail: str | list[dict[str, object]]
