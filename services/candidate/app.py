"""Candidate service: a user's recent items -> scored candidates from the k-NN index."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.ml.model import CANDIDATE_ARTIFACTS, CandidateModel
from shared.schemas import CandidateRequest, CandidateResponse
from shared.service import create_model_service
from shared.settings import get_common_settings


class CandidateSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CANDIDATE_", env_file=".env", extra="ignore")

    port: int = 8001


@lru_cache
def get_settings() -> CandidateSettings:
    return CandidateSettings()


def create_app() -> FastAPI:
    app, holder = create_model_service(
        "candidate", get_common_settings(), CANDIDATE_ARTIFACTS, CandidateModel.from_artifacts
    )

    @app.post(
        "/candidates",
        response_model=CandidateResponse,
        responses={503: {"description": "no model yet"}},
    )
    async def candidates(request: CandidateRequest) -> Any:
        loaded = holder.get()
        if loaded is None:
            return JSONResponse({"detail": "no model loaded yet"}, status_code=503)
        known, items = loaded.model.candidates(request.user, request.n)
        return CandidateResponse(
            user=request.user, version=loaded.version, known_user=known, candidates=items
        )

    return app
