"""Settings shared by every process; each service adds its own class with its own env prefix."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    """What every role needs: where Redis is, where artifacts go, where datasets live."""

    model_config = SettingsConfigDict(env_prefix="RECSYS_", env_file=".env", extra="ignore")

    redis_url: str = "redis://localhost:6379/0"
    # "redis": artifacts in Redis (containers need no shared disk); for big ones an fsspec URL:
    # "s3://bucket/prefix" (the s3 extra) or "file:///path" (shared.artifacts.make_store).
    artifact_store: str = "redis"
    key_prefix: str = "recsys"
    data_dir: Path = Path("../shared/data")
    work_dir: Path = Path("var")
    log_level: str = "INFO"
    model_check_seconds: float = Field(default=5.0, gt=0)
    # Strength of each event type: seeds of the candidate stage and interactions of the next
    # training. 0 or less: neither (negative feedback such as dislike and hide).
    event_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "view": 1.0,
            "click": 2.0,
            "add_to_cart": 3.0,
            "purchase": 5.0,
            "dislike": 0.0,
            "hide": 0.0,
            "impression": 0.0,
        }
    )
    # What a user already has is not recommended again: live events of these types, and the
    # trained history when `history_event_type` is among them. Repeat-purchase shops: [].
    exclude_event_types: list[str] = Field(default_factory=lambda: ["purchase"])
    # Never again for that user: products a user marked with these event types are kept in a
    # per-user set without expiry (unlike the bounded recent list) and left out of every answer.
    hide_event_types: list[str] = Field(default_factory=lambda: ["dislike", "hide"])
    history_event_type: str = "purchase"  # what the training interactions stand for
    # Products shown to a user this many times (`impression` events) without an interaction
    # since go last in their answers, until they interact with it; 0 = off (the default).
    demote_after_impressions: int = Field(default=0, ge=0, le=1000)
    # An event without a request_id belongs to the latest list that showed its product to the
    # user within this many hours (GET /online/metrics, served-list records kept as long).
    attribution_window_hours: float = Field(default=24.0, gt=0, le=24 * 30)
    # The served-list stream keeps at most the newest N records not yet ingested into Parquet
    # (ingested ones are trimmed away); the bound matters while the ingester is down.
    served_stream_max: int = Field(default=1_000_000, ge=1000)
    # Bounds: the stream keeps the newest N events, each user's recent list the newest M.
    events_stream_max: int = Field(default=1_000_000, ge=1000)
    recent_events_per_user: int = Field(default=50, ge=1, le=1000)
    # A recent list lives this long after its user's last event (0 = forever): without it Redis
    # keeps a list for every user who ever clicked. The stream keeps every event regardless.
    recent_events_ttl_days: float = Field(default=90.0, ge=0)
    # Candidate k-NN from ann_min_items items on: "hnsw" (approximate, an hnswlib graph rebuilt
    # from the embeddings at each model load; the default) or "exact" (a matrix product: ~47 ms
    # a request at 176k items). Smaller catalogs are searched exactly either way.
    # Trade-offs: docs/benchmarks.md.
    ann_backend: Literal["exact", "hnsw"] = "hnsw"
    ann_min_items: int = Field(default=50_000, ge=0)
    ann_m: int = Field(default=32, ge=2, le=128)
    ann_ef_construction: int = Field(default=200, ge=1)
    ann_ef_search: int = Field(default=150, ge=1)
    # 1 builds the same graph on every load (replicas agree); more threads build faster.
    ann_num_threads: int = Field(default=1, ge=1)


@lru_cache
def get_common_settings() -> CommonSettings:
    return CommonSettings()
