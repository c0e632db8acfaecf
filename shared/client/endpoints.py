"""The gateway's public API as the client knows it: one table of (method, path, client method),
checked against the gateway's OpenAPI schema (tests/shared/client/test_openapi.py), and how each
call is built and its answer read. Both clients call these builders; neither builds a URL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import httpx
from pydantic import TypeAdapter

import shared.client.query as query
from shared.client.call import Call, Endpoint, lines_reader, parse, reader
from shared.client.query import Categories
from shared.client.results import Readiness, Recommendations
from shared.live_catalog import ItemDeleted, ItemIn, ItemPage, ItemPatch, LiveItem
from shared.observability import REQUEST_ID_HEADER
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
    RecommendedItem,
    StatsResponse,
    TrendingWindow,
)
from shared.schemas.training import JobAccepted, TrainJobsResponse, TrainJobStatus, TrainRequest
from shared.served import OnlineMetrics
from shared.users import UserErased, UserHistory, UserProfile, UserRecord

RECOMMEND = Endpoint("GET", "/recommend", "recommend")
RECOMMEND_BATCH = Endpoint("POST", "/recommend/batch", "recommend_batch")
POPULAR = Endpoint("GET", "/popular", "popular")
SIMILAR = Endpoint("GET", "/items/{product}/similar", "similar")
LIST_ITEMS = Endpoint("GET", "/items", "list_items")
GET_ITEM = Endpoint("GET", "/items/{product}", "get_item")
PUT_ITEM = Endpoint("PUT", "/items/{product}", "put_item")
PATCH_ITEM = Endpoint("PATCH", "/items/{product}", "patch_item")
DELETE_ITEM = Endpoint("DELETE", "/items/{product}", "delete_item")
GET_USER = Endpoint("GET", "/users/{user}", "get_user")
PUT_USER = Endpoint("PUT", "/users/{user}", "put_user")
DELETE_USER = Endpoint("DELETE", "/users/{user}", "delete_user")
USER_HISTORY = Endpoint("GET", "/users/{user}/history", "user_history")
SEND_EVENT = Endpoint("POST", "/events", "send_event")
TRAIN = Endpoint("POST", "/train", "train")
TRAIN_JOBS = Endpoint("GET", "/train", "train_jobs")
TRAIN_STATUS = Endpoint("GET", "/train/{job_id}", "train_status")
MODELS = Endpoint("GET", "/models", "models")
MODEL = Endpoint("GET", "/models/{version}", "model")
ACTIVATE = Endpoint("POST", "/models/{version}/activate", "activate")
ESTIMATE = Endpoint("GET", "/models/{version}/estimate", "estimate")
STATS = Endpoint("GET", "/stats", "stats")
ONLINE_METRICS = Endpoint("GET", "/online/metrics", "online_metrics")
CREATE_EXPERIMENT = Endpoint("POST", "/experiments", "create_experiment")
EXPERIMENTS = Endpoint("GET", "/experiments", "experiments")
EXPERIMENT = Endpoint("GET", "/experiments/{name}", "experiment")
STOP_EXPERIMENT = Endpoint("POST", "/experiments/{name}/stop", "stop_experiment")
PROMOTE_EXPERIMENT = Endpoint("POST", "/experiments/{name}/promote", "promote_experiment")
ASSIGNMENTS = Endpoint("POST", "/experiments/{name}/assignments", "experiment_assignments")
HEALTH = Endpoint("GET", "/healthz", "health")
READY = Endpoint("GET", "/readyz", "ready")

# Every public route of the gateway: a route missing here fails test_openapi.py.
ENDPOINTS: tuple[Endpoint, ...] = (
    RECOMMEND,
    RECOMMEND_BATCH,
    POPULAR,
    SIMILAR,
    LIST_ITEMS,
    GET_ITEM,
    PUT_ITEM,
    PATCH_ITEM,
    DELETE_ITEM,
    GET_USER,
    PUT_USER,
    DELETE_USER,
    USER_HISTORY,
    SEND_EVENT,
    TRAIN,
    TRAIN_JOBS,
    TRAIN_STATUS,
    MODELS,
    MODEL,
    ACTIVATE,
    ESTIMATE,
    STATS,
    ONLINE_METRICS,
    CREATE_EXPERIMENT,
    EXPERIMENTS,
    EXPERIMENT,
    STOP_EXPERIMENT,
    PROMOTE_EXPERIMENT,
    ASSIGNMENTS,
    HEALTH,
    READY,
)

# Built once: a TypeAdapter compiles its validator when it is made.
_ITEMS = reader(TypeAdapter(list[RecommendedItem]))
_LIVE_ITEM = reader(TypeAdapter(LiveItem))
_BATCH_LINE = TypeAdapter(BatchLine)
_BATCH_LINES = lines_reader(_BATCH_LINE)
_ITEM_PAGE = reader(TypeAdapter(ItemPage))
_ITEM_DELETED = reader(TypeAdapter(ItemDeleted))
_USER = reader(TypeAdapter(UserRecord))
_USER_ERASED = reader(TypeAdapter(UserErased))
_USER_HISTORY = reader(TypeAdapter(UserHistory))
_EVENT_ACCEPTED = reader(TypeAdapter(EventAccepted))
_JOB_ACCEPTED = reader(TypeAdapter(JobAccepted))
_TRAIN_JOBS = reader(TypeAdapter(TrainJobsResponse))
_TRAIN_STATUS = reader(TypeAdapter(TrainJobStatus))
_MODELS = reader(TypeAdapter(ModelsResponse))
_MODEL = reader(TypeAdapter(ModelDetail))
_ACTIVATED = reader(TypeAdapter(ModelActivated))
_ESTIMATE = reader(TypeAdapter(OffPolicyEstimate))
_STATS = reader(TypeAdapter(StatsResponse))
_ONLINE = reader(TypeAdapter(OnlineMetrics))
_EXPERIMENT = reader(TypeAdapter(Experiment))
_EXPERIMENTS = reader(TypeAdapter(list[Experiment]))
_EXPERIMENT_REPORT = reader(TypeAdapter(ExperimentReport))
_ASSIGNMENTS = reader(TypeAdapter(ArmAssignments))
_HEALTH = reader(TypeAdapter(Health))
_READINESS = reader(TypeAdapter(Readiness))


def _recommendations(response: httpx.Response) -> Recommendations:
    raw = response.headers.get("X-Model-Version")
    return Recommendations(
        items=_ITEMS(response),
        version=int(raw) if raw is not None and raw.isdigit() else None,
        degraded=response.headers.get("X-Degraded"),
        arm=response.headers.get("X-Experiment-Arm"),
        request_id=response.headers.get(REQUEST_ID_HEADER),
    )


def recommend(
    user: str,
    k: int,
    *,
    category: Categories,
    min_price: float | None,
    max_price: float | None,
    exclude: Sequence[str],
    segment: str | None,
    explain: bool,
    boost_category: Sequence[str],
    bury_category: Sequence[str],
    boost_product: Sequence[str],
    bury_product: Sequence[str],
    max_per_category: int | None,
    diversity: float | None,
    pin: Mapping[str, int] | None,
    request_id: str | None = None,
) -> Call[Recommendations]:
    params: query.Query = {"user": user, "k": k}
    params |= query.filters(category, min_price, max_price, exclude)
    if segment is not None:
        params["segment"] = segment
    if explain:
        params["explain"] = "true"
    params |= query.rules(
        boost_category,
        bury_category,
        boost_product,
        bury_product,
        max_per_category,
        diversity,
        pin,
    )
    headers = {REQUEST_ID_HEADER: request_id} if request_id else None
    return Call(RECOMMEND, RECOMMEND.path, _recommendations, params, headers=headers)


def recommend_batch(request: BatchRequest) -> Call[list[BatchLine]]:
    body = request.model_dump(mode="json", exclude_unset=True)
    return Call(RECOMMEND_BATCH, RECOMMEND_BATCH.path, _BATCH_LINES, body=body)


def batch_line(response: httpx.Response, line: bytes | str) -> BatchLine:
    """One line of a streamed `recommend_batch` answer."""
    return parse(_BATCH_LINE, response, line)


def popular(
    k: int,
    window: TrendingWindow,
    category: Categories,
    min_price: float | None,
    max_price: float | None,
    exclude: Sequence[str],
) -> Call[Recommendations]:
    params = {"k": k, "window": window, **query.filters(category, min_price, max_price, exclude)}
    return Call(POPULAR, POPULAR.path, _recommendations, params)


def similar(
    product: str,
    k: int,
    category: Categories,
    min_price: float | None,
    max_price: float | None,
    exclude: Sequence[str],
) -> Call[Recommendations]:
    params = {"k": k, **query.filters(category, min_price, max_price, exclude)}
    return Call(SIMILAR, SIMILAR.path_for(product=product), _recommendations, params)


def list_items(category: str | None, cursor: str | None, limit: int) -> Call[ItemPage]:
    params: dict[str, str | int] = {"limit": limit}
    if category is not None:
        params["category"] = category
    if cursor is not None:
        params["cursor"] = cursor
    return Call(LIST_ITEMS, LIST_ITEMS.path, _ITEM_PAGE, params)


def get_item(product: str) -> Call[LiveItem]:
    return Call(GET_ITEM, GET_ITEM.path_for(product=product), _LIVE_ITEM)


def put_item(product: str, item: ItemIn) -> Call[LiveItem]:
    body = item.model_dump(mode="json")
    return Call(PUT_ITEM, PUT_ITEM.path_for(product=product), _LIVE_ITEM, body=body)


def patch_item(product: str, patch: ItemPatch) -> Call[LiveItem]:
    # Only the fields set: a field left out keeps its value, one set to None is cleared.
    body = patch.model_dump(mode="json", exclude_unset=True)
    return Call(PATCH_ITEM, PATCH_ITEM.path_for(product=product), _LIVE_ITEM, body=body)


def delete_item(product: str) -> Call[ItemDeleted]:
    path = DELETE_ITEM.path_for(product=product)
    return Call(DELETE_ITEM, path, _ITEM_DELETED)


def get_user(user: str) -> Call[UserRecord]:
    return Call(GET_USER, GET_USER.path_for(user=user), _USER)


def put_user(user: str, profile: UserProfile) -> Call[UserRecord]:
    body = profile.model_dump(mode="json")
    return Call(PUT_USER, PUT_USER.path_for(user=user), _USER, body=body)


def delete_user(user: str) -> Call[UserErased]:
    return Call(DELETE_USER, DELETE_USER.path_for(user=user), _USER_ERASED)


def user_history(user: str) -> Call[UserHistory]:
    return Call(USER_HISTORY, USER_HISTORY.path_for(user=user), _USER_HISTORY)


def send_event(event: EventIn) -> Call[EventAccepted]:
    # What the caller set (no ts: the gateway's clock; the gateway's defaults for the rest)
    body = event.model_dump(mode="json", exclude_unset=True, exclude_none=True)
    return Call(SEND_EVENT, SEND_EVENT.path, _EVENT_ACCEPTED, body=body)


def train(request: TrainRequest) -> Call[JobAccepted]:
    # Only what the caller set: the gateway's own defaults (and their changes) apply to the rest.
    body = request.model_dump(mode="json", exclude_unset=True)
    return Call(TRAIN, TRAIN.path, _JOB_ACCEPTED, body=body)


def train_jobs(limit: int) -> Call[TrainJobsResponse]:
    return Call(TRAIN_JOBS, TRAIN_JOBS.path, _TRAIN_JOBS, {"limit": limit})


def train_status(job_id: str) -> Call[TrainJobStatus]:
    path = TRAIN_STATUS.path_for(job_id=job_id)
    return Call(TRAIN_STATUS, path, _TRAIN_STATUS)


def models() -> Call[ModelsResponse]:
    return Call(MODELS, MODELS.path, _MODELS)


def model(version: int) -> Call[ModelDetail]:
    return Call(MODEL, MODEL.path_for(version=version), _MODEL)


def activate(version: int) -> Call[ModelActivated]:
    path = ACTIVATE.path_for(version=version)
    return Call(ACTIVATE, path, _ACTIVATED)


def estimate(version: int, m: int, draws: int) -> Call[OffPolicyEstimate]:
    path = ESTIMATE.path_for(version=version)
    return Call(ESTIMATE, path, _ESTIMATE, {"m": m, "draws": draws})


def stats() -> Call[StatsResponse]:
    return Call(STATS, STATS.path, _STATS)


def online_metrics(window_hours: int, version: int | None) -> Call[OnlineMetrics]:
    query: dict[str, int] = {"window_hours": window_hours}
    if version is not None:
        query["version"] = version
    return Call(ONLINE_METRICS, ONLINE_METRICS.path, _ONLINE, query)


def create_experiment(experiment: ExperimentIn) -> Call[Experiment]:
    body = experiment.model_dump(mode="json", exclude_unset=True)
    return Call(CREATE_EXPERIMENT, CREATE_EXPERIMENT.path, _EXPERIMENT, body=body)


def experiments() -> Call[list[Experiment]]:
    return Call(EXPERIMENTS, EXPERIMENTS.path, _EXPERIMENTS)


def experiment(name: str) -> Call[ExperimentReport]:
    return Call(EXPERIMENT, EXPERIMENT.path_for(name=name), _EXPERIMENT_REPORT)


def stop_experiment(name: str, request: StopRequest | None) -> Call[Experiment]:
    body = None if request is None else request.model_dump(mode="json")
    return Call(STOP_EXPERIMENT, STOP_EXPERIMENT.path_for(name=name), _EXPERIMENT, body=body)


def promote_experiment(name: str, request: PromoteRequest | None) -> Call[Experiment]:
    body = None if request is None else request.model_dump(mode="json")
    path = PROMOTE_EXPERIMENT.path_for(name=name)
    return Call(PROMOTE_EXPERIMENT, path, _EXPERIMENT, body=body)


def experiment_assignments(name: str, request: Assignments) -> Call[ArmAssignments]:
    body = request.model_dump(mode="json")
    return Call(ASSIGNMENTS, ASSIGNMENTS.path_for(name=name), _ASSIGNMENTS, body=body)


def health() -> Call[Health]:
    return Call(HEALTH, HEALTH.path, _HEALTH)


def ready() -> Call[Readiness]:
    return Call(READY, READY.path, _READINESS)
