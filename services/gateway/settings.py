"""Gateway settings (the routes' dependencies: `services/gateway/deps.py`)."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.schemas.rules import Rules


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", env_file=".env", extra="ignore")

    port: int = 8000
    candidate_url: str = "http://localhost:8001"
    ranker_url: str = "http://localhost:8002"
    # Deadline of each call to a stage, and of a whole /recommend (both stages plus fallbacks):
    # whatever is down or slow, a valid request is answered within `deadline_seconds`.
    timeout_seconds: float = Field(default=2.0, gt=0)
    deadline_seconds: float = Field(default=3.0, gt=0)
    # As TrainParams.n_candidates: the ranker sees lists like those it learnt on.
    n_candidates: int = Field(default=100, ge=10, le=2000)
    # Circuit breaker per stage: after this many failures in a row, calls stop for
    # `breaker_reset_seconds`, then one probe call decides whether they resume.
    breaker_failures: int = Field(default=5, ge=1)
    breaker_reset_seconds: float = Field(default=5.0, gt=0)
    # The popular list answered when the candidate stage is down: its size, and how often it is
    # fetched again from the candidate service (also at once whenever the model version moves).
    popular_size: int = Field(default=500, ge=10, le=5000)
    popular_refresh_seconds: float = Field(default=30.0, gt=0)
    # How often the running experiment is read from Redis (bucketing uses this copy: no round
    # trip per request) and its guardrails judged: traffic is back on control this soon after.
    experiment_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    # The exploration slot: this share of full answers show, in their last place, a product
    # drawn uniformly from the popular list, with its propensity logged (off-policy estimates
    # of versions before they serve: GET /models/{version}/estimate). 0 = off.
    explore_rate: float = Field(default=0.0, ge=0, le=1)
    # Its place in the answer (1 = first); 0 = the last. A higher place costs more clicks of the
    # ranked list and gives the estimate more clicks to learn from.
    explore_position: int = Field(default=0, ge=0, le=100)
    # Load shedding: at most this many /recommend requests inside the candidate -> ranker
    # pipeline at once; the excess is answered from the popular list (`X-Degraded: overload`).
    # 0 = no limit, the default: a limit keeps answers inside the deadline past capacity, but it
    # also sheds during short stalls below it (measured: docs/benchmarks.md). Set it where
    # overload is likelier than a tight p50 matters; with more cores per replica, higher.
    max_in_flight: int = Field(default=0, ge=0, le=10_000)
    # Answer cache: a user's full answer is served again, without the candidate and ranker
    # calls, while the served version, the user's state (events, hides, profile) and the live
    # catalog's products are those it came from, for at most this long (trending and the
    # ranker's clock are not tracked: they reach a cached user this much later). 0 = off.
    answer_cache_seconds: float = Field(default=30.0, ge=0, le=3600)
    # How many items all kept answers hold at most (least recently used out first): ~1.3 KB of
    # memory each, so the default is ~65 MB at most (5,000 answers of 10 items). 0 = off.
    answer_cache_items: int = Field(default=50_000, ge=0, le=10_000_000)
    # Guards POST /train and POST /models/{version}/activate (header X-API-Key) when set.
    # RECSYS_ADMIN_API_KEY (shared with the UI) is read when GATEWAY_ADMIN_API_KEY is absent.
    admin_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "admin_api_key", "GATEWAY_ADMIN_API_KEY", "RECSYS_ADMIN_API_KEY"
        ),
    )
    # Origins allowed to call the API from a browser (CORS), comma-separated; none by default.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Request bodies above this are refused with 413.
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # POST /train answers 429 (Retry-After) while this many training jobs are queued or running
    # (an identical request joins its job instead); 0 = no limit.
    max_active_trainings: int = Field(default=4, ge=0, le=1000)
    # Business rules for every /recommend and batch that sets none of its own, as JSON, e.g.
    # {"max_per_category": 3} or {"bury_category": ["GIFT WRAP"], "diversity": 0.3}.
    default_rules: Rules | None = None

    @field_validator("admin_api_key")
    @classmethod
    def _empty_is_off(cls, v: SecretStr | None) -> SecretStr | None:
        return v if v is not None and v.get_secret_value() else None

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, v: object) -> object:
        if isinstance(v, str):
            return [o.strip() for o in v.split(",") if o.strip()]
        return v


@lru_cache
def get_settings() -> GatewaySettings:
    return GatewaySettings()
