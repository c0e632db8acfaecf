"""Settings of the Streamlit UI; it only needs to know where the gateway is."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class UISettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="UI_", env_file=".env", extra="ignore")

    gateway_url: str = "http://localhost:8000"
    timeout_seconds: float = Field(default=10, gt=0)
    # How often the page asks the gateway about a running training job.
    poll_seconds: float = Field(default=1.0, gt=0)


@lru_cache
def get_settings() -> UISettings:
    return UISettings()
