"""Settings shared by every process; each service adds its own class with its own env prefix."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    """What every role needs: where Redis is, where artifacts go, where datasets live."""

    model_config = SettingsConfigDict(env_prefix="RECSYS_", env_file=".env", extra="ignore")

    redis_url: str = "redis://localhost:6379/0"
    # "redis": artifacts in Redis (containers need no shared disk); "file:///path" for big ones.
    artifact_store: str = "redis"
    key_prefix: str = "recsys"
    data_dir: Path = Path("../shared/data")
    work_dir: Path = Path("var")
    log_level: str = "INFO"
    model_check_seconds: float = Field(default=5.0, gt=0)
    # Strength of each event type: seeds of the candidate stage (and later labels and features).
    event_weights: dict[str, float] = Field(
        default_factory=lambda: {"view": 1.0, "click": 2.0, "add_to_cart": 3.0, "purchase": 5.0}
    )
    # Bounds: the stream keeps the newest N events, each user's recent list the newest M.
    events_stream_max: int = Field(default=1_000_000, ge=1000)
    recent_events_per_user: int = Field(default=50, ge=1, le=1000)


@lru_cache
def get_common_settings() -> CommonSettings:
    return CommonSettings()
