"""Typed, synchronous client for the gateway: the only service the UI talks to.

Streamlit reruns the script top to bottom on every interaction, so a blocking client is the
natural fit; every failure becomes one of the exceptions below so pages can show a readable
message instead of a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import TypeAdapter, ValidationError

from shared.schemas.models import ModelActivated, ModelDetail, ModelsResponse
from shared.schemas.serving import EventAccepted, EventIn, EventType, RecommendedItem, StatsResponse
from shared.schemas.training import (
    DatasetName,
    JobAccepted,
    TrainJobsResponse,
    TrainJobStatus,
    TrainRequest,
)
from ui.settings import UISettings

T = TypeVar("T")

# Built once: constructing a TypeAdapter compiles a validator.
_ITEMS = TypeAdapter(list[RecommendedItem])
_JOB_ACCEPTED = TypeAdapter(JobAccepted)
_JOB_STATUS = TypeAdapter(TrainJobStatus)
_MODELS = TypeAdapter(ModelsResponse)
_ACTIVATED = TypeAdapter(ModelActivated)
_MODEL = TypeAdapter(ModelDetail)
_JOBS = TypeAdapter(TrainJobsResponse)
_STATS = TypeAdapter(StatsResponse)
_EVENT = TypeAdapter(EventAccepted)
# Connection refused is instant, but a blackholed host would otherwise hang the page for the
# whole read timeout before the "not reachable" banner appears.
_MAX_CONNECT_SECONDS = 3.0


class GatewayUnavailable(Exception):
    """The gateway could not be reached (connection refused, DNS failure, timeout)."""

    def __init__(self, base_url: str, cause: str) -> None:
        super().__init__(f"gateway at {base_url} is not reachable: {cause}")
        self.base_url = base_url


class GatewayError(Exception):
    """The gateway answered with an error status or a body the UI does not understand."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(f"HTTP {status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail


class ModelNotReady(GatewayError):
    """503 from the gateway: no model is being served yet."""


@dataclass(frozen=True)
class Recommendations:
    """One /recommend answer: the items, the model version that ranked them, and whether the
    gateway had to answer without the ranker (X-Degraded)."""

    items: list[RecommendedItem]
    version: int | None
    degraded: str | None


class GatewayClient:
    @classmethod
    def from_settings(cls, settings: UISettings) -> GatewayClient:
        """The one way pages build a client: everything it needs comes from the UI settings."""
        key = settings.admin_api_key.get_secret_value() if settings.admin_api_key else None
        return cls(settings.gateway_url, settings.timeout_seconds, api_key=key)

    def __init__(
        self,
        base_url: str,
        timeout_seconds: float,
        *,
        transport: httpx.BaseTransport | None = None,
        api_key: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        timeout = httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, _MAX_CONNECT_SECONDS))
        # The gateway's admin key (UI_ADMIN_API_KEY), if it has one: Retrain and Activate need it.
        headers = {"X-API-Key": api_key} if api_key else {}
        self._http = httpx.Client(
            base_url=self.base_url, timeout=timeout, transport=transport, headers=headers
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def recommend(self, user: str, k: int) -> tuple[int | None, list[RecommendedItem]]:
        """Best-first items for `user` and the model version that ranked them."""
        response = self._request("GET", "/recommend", params={"user": user, "k": k})
        return _model_version(response), _parse(_ITEMS, response)

    def recommendations(self, user: str, k: int, *, explain: bool = False) -> Recommendations:
        """As `recommend`, with the degraded flag and, if `explain`, each item's explanation."""
        params: dict[str, str | int] = {"user": user, "k": k}
        if explain:
            params["explain"] = "true"
        response = self._request("GET", "/recommend", params=params)
        return Recommendations(
            items=_parse(_ITEMS, response),
            version=_model_version(response),
            degraded=response.headers.get("X-Degraded"),
        )

    def send_event(self, user: str, product: str, event_type: EventType) -> EventAccepted:
        """Tell the gateway what `user` did with `product`; their next answer is seeded by it."""
        body = EventIn(user=user, product=product, type=event_type).model_dump(
            mode="json", exclude_none=True
        )
        return _parse(_EVENT, self._request("POST", "/events", json=body))

    def train(self, dataset: DatasetName = "synthetic") -> str:
        """Start a training job; returns its id for `job`."""
        return self.train_request(TrainRequest(dataset=dataset))

    def train_request(self, request: TrainRequest) -> str:
        """Start a training job with every option of POST /train; returns its id."""
        body = request.model_dump(mode="json", exclude_unset=True)
        response = self._request("POST", "/train", json=body)
        return _parse(_JOB_ACCEPTED, response).job_id

    def jobs(self, limit: int = 20) -> TrainJobsResponse:
        """Recent training jobs, newest first."""
        return _parse(_JOBS, self._request("GET", "/train", params={"limit": limit}))

    def model(self, version: int) -> ModelDetail:
        """One version's manifest as the gateway shows it: metrics, params, evaluation."""
        return _parse(_MODEL, self._request("GET", f"/models/{version}"))

    def stats(self) -> StatsResponse:
        """What every service serves and how fast (counters since each one started)."""
        return _parse(_STATS, self._request("GET", "/stats"))

    def job(self, job_id: str) -> TrainJobStatus:
        response = self._request("GET", f"/train/{quote(job_id, safe='')}")
        return _parse(_JOB_STATUS, response)

    def models(self) -> ModelsResponse:
        return _parse(_MODELS, self._request("GET", "/models"))

    def activate(self, version: int) -> ModelActivated:
        response = self._request("POST", f"/models/{version}/activate")
        return _parse(_ACTIVATED, response)

    def ready(self) -> bool:
        """Whether a model is being served (GET /readyz); never raises ModelNotReady."""
        try:
            self._request("GET", "/readyz")
        except ModelNotReady:
            return False
        return True

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:  # covers connect errors and all timeouts
            raise GatewayUnavailable(self.base_url, str(exc) or type(exc).__name__) from exc
        if response.is_success:
            return response
        detail = _detail(response)
        if response.status_code == 503:
            raise ModelNotReady(503, detail)
        raise GatewayError(response.status_code, detail)


def _parse(adapter: TypeAdapter[T], response: httpx.Response) -> T:
    try:
        return adapter.validate_json(response.content)
    except ValidationError as exc:
        # A gateway of another version or a proxy's HTML page: say so instead of crashing.
        raise GatewayError(
            response.status_code, f"unexpected response from {response.request.url}: {exc}"
        ) from exc


def _model_version(response: httpx.Response) -> int | None:
    raw = response.headers.get("X-Model-Version")
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def _detail(response: httpx.Response) -> str:
    """FastAPI's {"detail": ...} as one line; validation errors come as a list of dicts."""
    try:
        detail = response.json()["detail"]
    except (ValueError, KeyError, TypeError):
        return response.text.strip()[:500] or response.reason_phrase
    if isinstance(detail, list):
        parts = [str(err.get("msg", err)) if isinstance(err, dict) else str(err) for err in detail]
        return "; ".join(parts)
    return str(detail)
