"""The gateway as the UI's pages use it: shared.client's `RecsysClient`, with the errors pages
show as banners.

Streamlit reruns the script top to bottom on every interaction, so the blocking client is the
natural fit. Every failure becomes one of the three exceptions below, so pages can show a
readable message instead of a traceback; 503 is told apart because the pages say "no model yet"
for it (while the first model trains, the gateway has nothing to answer with).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import TracebackType
from typing import Self

import httpx

from shared.client import ApiError, RecsysClient, RecsysConnectionError
from shared.client.results import Readiness, Recommendations
from shared.schemas.experiments import (
    Experiment,
    ExperimentIn,
    ExperimentReport,
    PromoteRequest,
    StopRequest,
)
from shared.schemas.models import ModelActivated, ModelDetail, ModelsResponse
from shared.schemas.serving import EventAccepted, EventIn, EventType, RecommendedItem, StatsResponse
from shared.schemas.training import DatasetName, TrainJobsResponse, TrainJobStatus, TrainRequest
from shared.served import OnlineMetrics
from ui.settings import UISettings

__all__ = [
    "GatewayClient",
    "GatewayError",
    "GatewayUnavailable",
    "ModelNotReady",
    "Recommendations",
]

# Connection refused is instant, but a blackholed host would otherwise hang the page for the
# whole read timeout before the "not reachable" banner appears.
_MAX_CONNECT_SECONDS = 3.0
# POST /experiments answers once both stages have loaded every arm's version (the gateway
# gives each version up to 60 s): that call may wait this long per version, on top of the usual.
_LOAD_SECONDS_PER_VERSION = 60.0


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


@contextlib.contextmanager
def _as_page_errors() -> Iterator[None]:
    try:
        yield
    except RecsysConnectionError as exc:
        raise GatewayUnavailable(exc.base_url, exc.cause) from exc
    except ApiError as exc:
        kind = ModelNotReady if exc.status_code == 503 else GatewayError
        raise kind(exc.status_code, exc.message) from exc


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
        api_key: str | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        connect = min(timeout_seconds, _MAX_CONNECT_SECONDS)
        # The gateway's admin key (UI_ADMIN_API_KEY), if it has one: Retrain, Activate and the
        # experiments' start, stop and promote need it.
        self._api = RecsysClient(
            base_url,
            api_key=api_key,
            timeout=httpx.Timeout(timeout_seconds, connect=connect),
            http=http,
        )
        self.base_url = self._api.base_url
        # For the one slow call (create_experiment), which needs a client with a longer timeout.
        self._api_key = api_key
        self._timeout = timeout_seconds
        self._connect = connect
        self._http = http

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
        self._api.close()

    def recommend(self, user: str, k: int) -> tuple[int | None, list[RecommendedItem]]:
        """Best-first items for `user` and the model version that ranked them."""
        with _as_page_errors():
            answer = self._api.recommend(user, k)
        return answer.version, answer.items

    def recommendations(self, user: str, k: int, *, explain: bool = False) -> Recommendations:
        """As `recommend`, with the degraded flag and, if `explain`, each item's explanation."""
        with _as_page_errors():
            return self._api.recommend(user, k, explain=explain)

    def send_event(self, user: str, product: str, event_type: EventType) -> EventAccepted:
        """Tell the gateway what `user` did with `product`; their next answer is seeded by it."""
        with _as_page_errors():
            return self._api.send_event(EventIn(user=user, product=product, type=event_type))

    def train(self, dataset: DatasetName = "synthetic") -> str:
        """Start a training job; returns its id for `job`."""
        return self.train_request(TrainRequest(dataset=dataset))

    def train_request(self, request: TrainRequest) -> str:
        """Start a training job with every option of POST /train; returns its id."""
        with _as_page_errors():
            return self._api.train(request).job_id

    def jobs(self, limit: int = 20) -> TrainJobsResponse:
        """Recent training jobs, newest first."""
        with _as_page_errors():
            return self._api.train_jobs(limit)

    def model(self, version: int) -> ModelDetail:
        """One version's manifest as the gateway shows it: metrics, params, evaluation."""
        with _as_page_errors():
            return self._api.model(version)

    def stats(self) -> StatsResponse:
        """What every service serves and how fast (counters since each one started)."""
        with _as_page_errors():
            return self._api.stats()

    def online_metrics(self, window_hours: int) -> OnlineMetrics:
        """What the served answers earned per model version over the last `window_hours`."""
        with _as_page_errors():
            return self._api.online_metrics(window_hours)

    def job(self, job_id: str) -> TrainJobStatus:
        with _as_page_errors():
            return self._api.train_status(job_id)

    def models(self) -> ModelsResponse:
        with _as_page_errors():
            return self._api.models()

    def activate(self, version: int) -> ModelActivated:
        with _as_page_errors():
            return self._api.activate(version)

    def create_experiment(self, experiment: ExperimentIn) -> Experiment:
        """Start an A/B experiment (admin; 409 while another runs or when the name is taken).
        Waits for the stages to load the arms' versions, so for longer than other calls."""
        versions = len({arm.version for arm in experiment.arms})
        read = self._timeout + _LOAD_SECONDS_PER_VERSION * versions
        timeout = httpx.Timeout(read, connect=self._connect)
        with (
            RecsysClient(
                self.base_url, api_key=self._api_key, timeout=timeout, http=self._http
            ) as api,
            _as_page_errors(),
        ):
            return api.create_experiment(experiment)

    def experiments(self) -> list[Experiment]:
        """Every experiment, running or ended, oldest first."""
        with _as_page_errors():
            return self._api.experiments()

    def experiment(self, name: str) -> ExperimentReport:
        """One experiment's per-arm figures, each arm against the control, and the verdict."""
        with _as_page_errors():
            return self._api.experiment(name)

    def stop_experiment(self, name: str, reason: str | None = None) -> Experiment:
        """End it (admin): everyone is served by the current version again."""
        request = None if reason is None else StopRequest(reason=reason)
        with _as_page_errors():
            return self._api.stop_experiment(name, request)

    def promote_experiment(self, name: str, arm: str | None = None) -> Experiment:
        """Make `arm`'s version current (admin; default: the verdict's winner) and end it."""
        request = None if arm is None else PromoteRequest(arm=arm)
        with _as_page_errors():
            return self._api.promote_experiment(name, request)

    def ready(self) -> bool:
        """Whether a model is being served (GET /readyz); never raises ModelNotReady."""
        return self.readiness() is not None

    def readiness(self) -> Readiness | None:
        """What GET /readyz says while a model is served (each stage's version, and why a stage
        refused the current one); None while none is; never raises ModelNotReady."""
        try:
            with _as_page_errors():
                return self._api.ready()
        except ModelNotReady:
            return None
