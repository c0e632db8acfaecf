"""Gateway settings and the dependencies its routes share."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

import httpx
from fastapi import Depends, Request
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.registry import ModelRegistry


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", env_file=".env", extra="ignore")

    port: int = 8000
    candidate_url: str = "http://localhost:8001"
    ranker_url: str = "http://localhost:8002"
    timeout_seconds: float = Field(default=2.0, gt=0)
    # As TrainParams.n_candidates: the ranker sees lists like those it learnt on.
    n_candidates: int = Field(default=100, ge=10, le=2000)


@lru_cache
def get_settings() -> GatewaySettings:
    return GatewaySettings()


def get_http(request: Request) -> httpx.AsyncClient:
    client: httpx.AsyncClient = request.app.state.http
    return client


def get_registry(request: Request) -> ModelRegistry:
    registry: ModelRegistry = request.app.state.registry
    return registry


SettingsDep = Annotated[GatewaySettings, Depends(get_settings)]
HttpDep = Annotated[httpx.AsyncClient, Depends(get_http)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
