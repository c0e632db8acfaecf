"""Candidate service: a user's recent items -> scored candidates from the k-NN index."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

import redis
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.events import EventStore
from shared.ml.model import CANDIDATE_ARTIFACTS, CandidateModel
from shared.redis_conn import async_client
from shared.schemas import CandidateRequest, CandidateResponse
from shared.service import create_model_service
from shared.settings import get_common_settings

log = logging.getLogger(__name__)


class CandidateSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CANDIDATE_", env_file=".env", extra="ignore")

    port: int = 8001


@lru_cache
def get_settings() -> CandidateSettings:
    return CandidateSettings()


def create_app() -> FastAPI:
    common = get_common_settings()
    app, holder = create_model_service(
        "candidate", common, CANDIDATE_ARTIFACTS, CandidateModel.from_artifacts
    )
    # Creating the client does no I/O; it connects on first use.
    events = EventStore(async_client(common.redis_url), common)

    @app.post(
        "/candidates",
        response_model=CandidateResponse,
        responses={503: {"description": "no model yet"}},
    )
    async def candidates(request: CandidateRequest) -> Any:
        loaded = holder.get()
        if loaded is None:
            return JSONResponse({"detail": "no model loaded yet"}, status_code=503)
        try:
            live = events.weighted(await events.recent(request.user))
        except redis.RedisError as exc:  # the model still answers from what it was trained on
            log.warning("recent events unavailable: %s", exc)
            live = []
        known, items = loaded.model.candidates(
            request.user, request.n, live, request.filters, request.segment
        )
        return CandidateResponse(
            user=request.user, version=loaded.version, known_user=known, candidates=items
        )

    return app
