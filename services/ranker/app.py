"""Ranker service: a user and candidates -> LightGBM-ordered, scored items (same version)."""

from __future__ import annotations

from functools import lru_cache, partial
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse, Response
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.ranker.native import NativeCompiler
from shared.ml.stage_two.serving import RankingStage, demote
from shared.ml.version_artifacts import RANKER_ARTIFACTS
from shared.model_holder import Loaded
from shared.observability import RANKER_MEMBERS, RANKER_NATIVE_MEMBERS
from shared.schemas.serving import RankRequest, RankResponse
from shared.service import body_schema, create_model_service, json_body
from shared.settings import get_common_settings


class RankerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RANKER_", env_file=".env", extra="ignore")

    port: int = 8002
    # Places in each answer kept for cold-start products (nobody took them yet) when the
    # candidate stage proposed some: the ranker alone would always score them last.
    fresh_slots: int = Field(default=1, ge=0, le=100)
    # Compile each loaded version's trees to native code (lleaves, in a child process, after the
    # swap): LightGBM's scores at a fifth of the CPU per request. Off, or where that fails,
    # LightGBM predicts.
    compile: bool = True


@lru_cache
def get_settings() -> RankerSettings:
    return RankerSettings()


def _load(artifacts: dict[str, bytes], compiler: NativeCompiler | None) -> RankingStage:
    model = RankingStage.from_artifacts(artifacts)
    if compiler is not None:
        compiler.submit(model)
    return model


def _member_count(loaded: Loaded[RankingStage] | None, native: bool) -> float:
    if loaded is None:
        return 0.0
    ranker = loaded.model.ranker
    return float(ranker.native_members if native else len(ranker.boosters))


RankBody = Annotated[RankRequest, Depends(json_body(RankRequest))]


def create_app() -> FastAPI:
    settings = get_settings()
    compiler = NativeCompiler() if settings.compile else None
    app, holder = create_model_service(
        "ranker",
        get_common_settings(),
        RANKER_ARTIFACTS,
        partial(_load, compiler=compiler),
        on_shutdown=compiler.close if compiler else None,
    )
    RANKER_MEMBERS.set_function(lambda: _member_count(holder.get(), native=False))
    RANKER_NATIVE_MEMBERS.set_function(lambda: _member_count(holder.get(), native=True))

    @app.post(
        "/rank",
        response_model=RankResponse,
        responses={409: {"description": "version not loaded"}},
        openapi_extra=body_schema(app, RankRequest),
    )
    async def rank(request: RankBody) -> Any:
        # Score with the version the candidate stage used, so one answer never mixes two models.
        loaded = holder.get(request.version)
        if loaded is None:  # the candidate stage may have swapped a moment before us
            await holder.sync()
            loaded = holder.get(request.version)
        if loaded is None:  # or the request waited through more than one swap
            loaded = await holder.get_pinned(request.version)
        if loaded is None:
            return JSONResponse(
                {"detail": f"model version {request.version} is not available"}, status_code=409
            )
        demoted = set(request.stage_one.demoted or ())
        items = loaded.model.rank(
            request.user,
            request.stage_one.candidates,
            request.k + len(demoted),  # what goes last still leaves k
            request.explain,
            settings.fresh_slots,
            request.stage_one.live,
        )
        if demoted:
            items = demote(items, demoted)[: request.k]
        answer = RankResponse.model_construct(
            user=request.user, version=loaded.version, items=items
        )
        # Our own objects, already valid: serialized once in pydantic-core, not re-validated.
        return Response(answer.model_dump_json(), media_type="application/json")

    return app
