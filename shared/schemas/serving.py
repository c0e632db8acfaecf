"""Payloads of the request path: recommendations, stage one and two, items, events, stats."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import orjson
from pydantic import (
    Field,
    FiniteFloat,
    StringConstraints,
    field_validator,
    model_validator,
)

from shared.schemas.base import Id, Strict, same_lengths
from shared.schemas.rules import RuleEffect, Rules
from shared.served import Attribution

MAX_CANDIDATES = 2000


class CandidateListPayload(Strict):
    """Stage one's candidates, best first, as four columns: entry i of each is candidate i.

    Columns rather than a list of objects because the ranker validates a few hundred of them on
    every request: four typed lists cost pydantic a third of what as many small models do
    (50 vs 180 us for 200 candidates), in 40 % fewer bytes on the wire.
    """

    products: list[Id] = Field(max_length=MAX_CANDIDATES)
    scores: list[float] = Field(max_length=MAX_CANDIDATES)
    similarity: list[float] = Field(max_length=MAX_CANDIDATES)  # embedding k-NN score
    reasons: list[str] = Field(max_length=MAX_CANDIDATES)

    @model_validator(mode="after")
    def _same_length(self) -> CandidateListPayload:
        return same_lengths(self, "products", "scores", "similarity", "reasons")


Category = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class ItemFilters(Strict):
    """Constraints every recommended item must meet (GET /recommend query parameters)."""

    # Items of any of these categories.
    category: list[Category] | None = Field(default=None, min_length=1, max_length=20)
    min_price: float | None = Field(default=None, ge=0, strict=True)
    max_price: float | None = Field(default=None, ge=0, strict=True)
    exclude: list[Id] = Field(default_factory=list, max_length=100)

    def takes_category(self, category: str | None) -> bool:
        return self.category is None or category in self.category

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

    products: list[Id] = Field(min_length=1, max_length=1000)
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
    # Answer with this model version (a batch keeps one for all its users); the current one
    # if None. 409 if it cannot be loaded.
    version: int | None = Field(default=None, ge=1)


class CandidateResponse(Strict):
    user: Id
    version: int
    known_user: bool
    candidates: CandidateListPayload
    live: LiveHistory | None = None  # left out when the user took nothing since training
    # Shown RECSYS_DEMOTE_AFTER_IMPRESSIONS times without an interaction: the ranker puts
    # them last. Left out when there are none.
    demoted: list[Id] | None = Field(default=None, max_length=1000)
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
    rules: RuleEffect | None = None  # when business rules moved or added the item


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

    products: list[Id] = Field(min_length=1, max_length=MAX_ITEM_LOOKUP)


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


MAX_BATCH_USERS = 1000


class BatchRequest(Strict):
    """POST /recommend/batch: lists for many users, streamed as `BatchLine`s."""

    users: list[Id] = Field(min_length=1, max_length=MAX_BATCH_USERS)
    k: int = Field(default=10, ge=1, le=100, strict=True)
    filters: ItemFilters = Field(default_factory=ItemFilters)
    rules: Rules | None = None  # as /recommend's query parameters; None: the defaults
    # Pin a version (`recsys recommend` keeps the first chunk's for every later one); if it
    # can no longer be loaded, the lines are degraded answers from the popular list.
    version: int | None = Field(default=None, ge=1, strict=True)
    # Off by default: a nightly batch for every user would fill Redis with lists nobody sees
    # unless they are sent (each kept the attribution window long, like /recommend's).
    log_served: bool = Field(
        default=False,
        strict=True,
        description="log each list as served, as /recommend logs its answers: the events it "
        "brings (an e-mail's clicks) are attributed to it and counted in the online metrics; "
        "each line then carries its `request_id`",
    )


class BatchLine(Strict):
    """One line of the answer: a user's list, or why there is none."""

    user: str
    version: int | None
    items: list[RecommendedItem]
    degraded: str | None = None  # as X-Degraded of /recommend
    error: str | None = None
    # With `log_served`: the id this list was logged under; events that came from it (an
    # e-mail's links) send it as `request_id` to be attributed to it.
    request_id: str | None = None


class SimilarRequest(Strict):
    """POST /similar on the candidate service: the items most like one product."""

    product: Id
    n: int = Field(default=10, ge=1, le=100)
    filters: ItemFilters = Field(default_factory=ItemFilters)


class SimilarResponse(Strict):
    """Items like `product`, best first: taken together with it (`together_with:`, the neighbour
    graph: baskets, sessions) before those whose embedding is close (`similar_to:`)."""

    version: int
    product: str
    items: list[RecommendedItem]


TrendingWindow = Literal["1h", "1d", "7d", "30d"]


class TrendingRequest(Strict):
    """POST /trending on the candidate service: what users take now, decayed with a half-life
    of `window`; the version's popular items fill the list up."""

    n: int = Field(default=10, ge=1, le=100)
    window: TrendingWindow = "1d"
    filters: ItemFilters = Field(default_factory=ItemFilters)


# `dislike` and `hide`: never recommend that product to that user again (RECSYS_HIDE_EVENT_TYPES).
# `impression`: the product was shown (RECSYS_DEMOTE_AFTER_IMPRESSIONS).
EventType = Literal["view", "click", "add_to_cart", "purchase", "dislike", "hide", "impression"]


class EventIn(Strict):
    """POST /events: something a user did with a product."""

    user: Id
    product: Id
    type: EventType
    ts: datetime | None = None  # when it happened; the gateway's clock if absent
    # The answer it came from (its X-Request-ID) and the product's place in it; without them
    # the event belongs to the latest answer that showed the product to the user.
    request_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:\-]{1,128}$")
    position: int | None = Field(default=None, ge=1, le=1000, strict=True)
    # A purchase's quantity and unit price (revenue per answer in GET /online/metrics).
    quantity: int = Field(default=1, ge=1, le=1_000_000, strict=True)
    price: float | None = Field(default=None, ge=0, strict=True, allow_inf_nan=False)

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
    # Attribution: the served list it belongs to (None: none within the window).
    request_id: str | None = None
    version: int | None = None
    position: int | None = None
    quantity: int = 1
    price: float | None = None


class EventAccepted(Strict):
    accepted: Literal[True] = True
    id: str  # the Redis stream entry id
    attribution: Attribution | None = None  # the served list it was counted for


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
    cached: int = 0  # the gateway: answers served again from its answer cache


class StatsResponse(Strict):
    """GET /stats: what the gateway and its two stages serve, and how fast."""

    collected_at: float  # unix seconds, the gateway's clock
    current: int | None  # the registry's current version (what every service should serve)
    services: list[ServiceStats]


class Health(Strict):
    status: Literal["ok"] = "ok"
    service: str
    version: int | None = None
    # Why the registry's current version is not the one served (`version` serves meanwhile).
    refused: str | None = None


class ErrorBody(Strict):
    detail: str | list[dict[str, object]]
