"""`RecsysClient`: the gateway's public API from blocking code (scripts, Streamlit, tests).

    with RecsysClient("http://localhost:8000") as client:
        answer = client.recommend("U1", k=10, category="books")

Every method is one request; what it raises is in `shared.client.errors`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Self, TypeVar

import httpx

import shared.client.endpoints as api
from shared.client.call import DEFAULT_BASE_URL, DEFAULT_TIMEOUT_SECONDS, Call, Connection
from shared.client.errors import error_for
from shared.client.query import Categories
from shared.client.results import Readiness, Recommendations
from shared.live_catalog import ItemDeleted, ItemIn, ItemPage, ItemPatch, LiveItem
from shared.schemas.experiments import (
    ArmAssignments,
    Assignments,
    Experiment,
    ExperimentIn,
    ExperimentReport,
    PromoteRequest,
    StopRequest,
)
from shared.schemas.models import (
    ModelActivated,
    ModelDetail,
    ModelsResponse,
    OffPolicyEstimate,
)
from shared.schemas.serving import (
    BatchLine,
    BatchRequest,
    EventAccepted,
    EventIn,
    Health,
    StatsResponse,
    TrendingWindow,
)
from shared.schemas.training import JobAccepted, TrainJobsResponse, TrainJobStatus, TrainRequest
from shared.served import OnlineMetrics
from shared.users import UserErased, UserHistory, UserProfile, UserRecord

T = TypeVar("T")


class RecsysClient:
    """A blocking client of the gateway. `api_key` is sent as X-API-Key (the admin routes need
    it when the gateway has one). `http`: a client of your own (a transport, a proxy, a pool);
    the caller closes it, and its base URL and timeout give way to this client's."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT_SECONDS,
        http: httpx.Client | None = None,
    ) -> None:
        self._conn = Connection(base_url, api_key, timeout)
        self._owned = http is None
        self._http = http if http is not None else httpx.Client()

    @property
    def base_url(self) -> str:
        return self._conn.base_url

    def close(self) -> None:
        if self._owned:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self, call: Call[T]) -> T:
        try:
            response = self._http.request(**self._conn.request(call))
        except httpx.TransportError as exc:  # refused, DNS, every kind of timeout
            raise self._conn.unreachable(exc) from exc
        return call.finish(response)

    def recommend(
        self,
        user: str,
        k: int = 10,
        *,
        category: Categories = None,
        min_price: float | None = None,
        max_price: float | None = None,
        exclude: Sequence[str] = (),
        segment: str | None = None,
        explain: bool = False,
        boost_category: Sequence[str] = (),
        bury_category: Sequence[str] = (),
        boost_product: Sequence[str] = (),
        bury_product: Sequence[str] = (),
        max_per_category: int | None = None,
        diversity: float | None = None,
        pin: Mapping[str, int] | None = None,
        request_id: str | None = None,
    ) -> Recommendations:
        """`GET /recommend`: the best `k` items for `user` of `category` (one or several),
        within the prices, without `exclude`; `segment` for a user without history; `explain`
        adds each item's seed, feature contributions and what the rules did. Business rules
        (none given: the gateway's defaults): boost or bury categories and products, at most
        `max_per_category` per category, `diversity` (MMR weight, 0-1), `pin` products at
        1-based positions ({product: position}). `request_id`: the answer's id (1-128 of
        A-Z a-z 0-9 _ . : -), by default one the gateway makes; either way it comes back as
        `Recommendations.request_id`, for the events the list brings."""
        call = api.recommend(
            user,
            k,
            category=category,
            min_price=min_price,
            max_price=max_price,
            exclude=exclude,
            segment=segment,
            explain=explain,
            boost_category=boost_category,
            bury_category=bury_category,
            boost_product=boost_product,
            bury_product=bury_product,
            max_per_category=max_per_category,
            diversity=diversity,
            pin=pin,
            request_id=request_id,
        )
        return self._run(call)

    def recommend_batch(self, request: BatchRequest) -> list[BatchLine]:
        """`POST /recommend/batch`: a list per user (up to 1,000), in the request's order, every
        full answer from one model version."""
        return self._run(api.recommend_batch(request))

    def iter_recommend_batch(self, request: BatchRequest) -> Iterator[BatchLine]:
        """As `recommend_batch`, each user's line as it arrives: what came before a broken
        connection is kept (the gateway streams the answer)."""
        call = api.recommend_batch(request)
        try:
            with self._http.stream(**self._conn.request(call)) as response:
                if not response.is_success:
                    response.read()
                    raise error_for(response)
                for line in response.iter_lines():
                    if line.strip():
                        yield api.batch_line(response, line)
        except httpx.TransportError as exc:
            raise self._conn.unreachable(exc) from exc

    def popular(
        self,
        k: int = 10,
        *,
        window: TrendingWindow = "1d",
        category: Categories = None,
        min_price: float | None = None,
        max_price: float | None = None,
        exclude: Sequence[str] = (),
    ) -> Recommendations:
        """`GET /popular`: trending products, events halved in weight every `window`."""
        return self._run(api.popular(k, window, category, min_price, max_price, exclude))

    def similar(
        self,
        product: str,
        k: int = 10,
        *,
        category: Categories = None,
        min_price: float | None = None,
        max_price: float | None = None,
        exclude: Sequence[str] = (),
    ) -> Recommendations:
        """`GET /items/{product}/similar`: taken together with `product`, then alike."""
        return self._run(api.similar(product, k, category, min_price, max_price, exclude))

    def list_items(
        self, *, category: str | None = None, cursor: str | None = None, limit: int = 100
    ) -> ItemPage:
        """`GET /items`: a page of the live catalog; pass its `cursor` back for the next."""
        return self._run(api.list_items(category, cursor, limit))

    def get_item(self, product: str) -> LiveItem:
        """`GET /items/{product}`: the live record, else the served model's (NotFoundError)."""
        return self._run(api.get_item(product))

    def put_item(self, product: str, item: ItemIn) -> LiveItem:
        """`PUT /items/{product}` (admin): create or replace a product of the live catalog."""
        return self._run(api.put_item(product, item))

    def patch_item(self, product: str, patch: ItemPatch) -> LiveItem:
        """`PATCH /items/{product}` (admin): change the fields set in `patch` only."""
        return self._run(api.patch_item(product, patch))

    def delete_item(self, product: str) -> ItemDeleted:
        """`DELETE /items/{product}` (admin): in no answer any more, until put again."""
        return self._run(api.delete_item(product))

    def get_user(self, user: str) -> UserRecord:
        """`GET /users/{user}`: the user's profile (NotFoundError without one)."""
        return self._run(api.get_user(user))

    def put_user(self, user: str, profile: UserProfile) -> UserRecord:
        """`PUT /users/{user}` (admin): age and segment, for cold start and training."""
        return self._run(api.put_user(user, profile))

    def delete_user(self, user: str) -> UserErased:
        """`DELETE /users/{user}` (admin): erase the user; the answer says what was erased."""
        return self._run(api.delete_user(user))

    def user_history(self, user: str) -> UserHistory:
        """`GET /users/{user}/history`: profile, recent events and hidden products."""
        return self._run(api.user_history(user))

    def send_event(self, event: EventIn) -> EventAccepted:
        """`POST /events`: what a user did; their next answer takes it into account."""
        return self._run(api.send_event(event))

    def train(self, request: TrainRequest | None = None) -> JobAccepted:
        """`POST /train` (admin): queue a training job (synthetic data by default)."""
        return self._run(api.train(request if request is not None else TrainRequest()))

    def train_jobs(self, limit: int = 20) -> TrainJobsResponse:
        """`GET /train`: the newest training jobs, newest first."""
        return self._run(api.train_jobs(limit))

    def train_status(self, job_id: str) -> TrainJobStatus:
        """`GET /train/{job_id}`: a job's state, progress and, once done, its model version."""
        return self._run(api.train_status(job_id))

    def models(self) -> ModelsResponse:
        """`GET /models`: every version in the registry and which one is current."""
        return self._run(api.models())

    def model(self, version: int) -> ModelDetail:
        """`GET /models/{version}`: how a version was trained and evaluated."""
        return self._run(api.model(version))

    def activate(self, version: int) -> ModelActivated:
        """`POST /models/{version}/activate` (admin): serve that version (rollback)."""
        return self._run(api.activate(version))

    def estimate(self, version: int, *, m: int = 10, draws: int = 2000) -> OffPolicyEstimate:
        """`GET /models/{version}/estimate` (admin): the version's click rate in the exploration
        slot, estimated from the latest logged draws before it serves anyone."""
        return self._run(api.estimate(version, m, draws))

    def online_metrics(
        self, window_hours: int = 24, *, version: int | None = None
    ) -> OnlineMetrics:
        """`GET /online/metrics`: what the served lists earned per model version over the last
        `window_hours` (attributed events: CTR, add-to-cart and conversion rates, revenue)."""
        return self._run(api.online_metrics(window_hours, version))

    def create_experiment(self, experiment: ExperimentIn) -> Experiment:
        """`POST /experiments` (admin): start an A/B experiment (one runs at a time)."""
        return self._run(api.create_experiment(experiment))

    def experiments(self) -> list[Experiment]:
        """`GET /experiments`: every experiment, running or ended, oldest first."""
        return self._run(api.experiments())

    def experiment(self, name: str) -> ExperimentReport:
        """`GET /experiments/{name}`: per-arm counts and rates, each arm against the control
        (an always-valid interval), the verdict."""
        return self._run(api.experiment(name))

    def stop_experiment(self, name: str, request: StopRequest | None = None) -> Experiment:
        """`POST /experiments/{name}/stop` (admin): all traffic back on the current version."""
        return self._run(api.stop_experiment(name, request))

    def promote_experiment(self, name: str, request: PromoteRequest | None = None) -> Experiment:
        """`POST /experiments/{name}/promote` (admin): the arm's version (default: the
        winner) becomes current; the experiment ends."""
        return self._run(api.promote_experiment(name, request))

    def experiment_assignments(self, name: str, request: Assignments) -> ArmAssignments:
        """`POST /experiments/{name}/assignments`: the arm of each user (up to 1,000)."""
        return self._run(api.experiment_assignments(name, request))

    def stats(self) -> StatsResponse:
        """`GET /stats`: what each service serves and how fast, since it started."""
        return self._run(api.stats())

    def health(self) -> Health:
        """`GET /healthz`: the gateway process runs."""
        return self._run(api.health())

    def ready(self) -> Readiness:
        """`GET /readyz`: both stages serve a model (else RetryableError, 503)."""
        return self._run(api.ready())
