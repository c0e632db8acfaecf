"""Settings of the Streamlit UI; it only needs to know where the gateway is."""

from __future__ import annotations

from functools import lru_cache

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class UISettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="UI_", env_file=".env", extra="ignore")

    gateway_url: str = "http://localhost:8000"
    timeout_seconds: float = Field(default=10, gt=0)
    # How often the page asks the gateway about a running training job.
    poll_seconds: float = Field(default=1.0, gt=0)
    # Sent as X-API-Key: the gateway's admin key, if it has one (Retrain, Activate, and starting,
    # stopping and promoting experiments).
    # RECSYS_ADMIN_API_KEY (shared with the gateway) is read when UI_ADMIN_API_KEY is absent.
    admin_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("admin_api_key", "UI_ADMIN_API_KEY", "RECSYS_ADMIN_API_KEY"),
    )


@lru_cache
def get_settings() -> UISettings:
    return UISettings()
