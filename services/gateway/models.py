"""GET /models and POST /models/{version}/activate (rollback)."""

from __future__ import annotations

from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from services.gateway.deps import RegistryDep
from services.gateway.security import AdminDep
from shared.registry import ModelRegistry, UnknownVersionError
from shared.schemas.models import ModelActivated, ModelDetail, ModelsResponse, ModelSummary

router = APIRouter()


def _list(registry: ModelRegistry) -> ModelsResponse:
    versions = [
        ModelSummary(
            version=m.version, created_at=m.created_at, dataset=m.dataset, metrics=m.metrics
        )
        for m in registry.manifests()
    ]
    return ModelsResponse(current=registry.current_version(), versions=versions)


@router.get("/models", response_model=ModelsResponse)
async def models(registry: RegistryDep) -> ModelsResponse:
    return await to_thread.run_sync(_list, registry)


@router.post(
    "/models/{version}/activate",
    response_model=ModelActivated,
    responses={404: {"description": "unknown version"}},
)
async def activate(
    version: Annotated[int, Path(ge=1, le=2**31)], registry: RegistryDep, _: AdminDep
) -> Any:
    try:
        await to_thread.run_sync(registry.activate, version)
    except UnknownVersionError:
        return JSONResponse({"detail": f"model version {version} does not exist"}, status_code=404)
    return ModelActivated(current=version)


def _detail(registry: ModelRegistry, version: int) -> ModelDetail:
    m = registry.manifest(version)  # raises UnknownVersionError
    return ModelDetail(
        version=m.version,
        created_at=m.created_at,
        dataset=m.dataset,
        metrics=m.metrics,
        current=registry.current_version() == m.version,
        params=m.params,
        evaluation=m.evaluation,
        tuning=m.tuning,
    )


@router.get(
    "/models/{version}",
    response_model=ModelDetail,
    responses={404: {"description": "unknown version"}},
)
async def model_detail(version: Annotated[int, Path(ge=1, le=2**31)], registry: RegistryDep) -> Any:
    try:
        return await to_thread.run_sync(_detail, registry, version)
    except UnknownVersionError:
        return JSONResponse({"detail": f"model version {version} does not exist"}, status_code=404)
