"""The dependencies the gateway's routes share: what the app's lifespan built, by type."""

from __future__ import annotations

from typing import Annotated

import aiohttp
from fastapi import Depends, Request

from services.gateway.admission import InFlightLimit
from services.gateway.answer_cache import AnswerCache
from services.gateway.downstream import Stages
from services.gateway.experiment_watch import ExperimentWatch
from services.gateway.pipeline import Pipeline
from services.gateway.popular import PopularCache
from services.gateway.settings import GatewaySettings, get_settings
from shared.events import EventStore
from shared.live_catalog import CatalogMirror
from shared.registry import ModelRegistry
from shared.served import ServedLog


# The routes' dependencies are coroutines: FastAPI runs plain functions in its thread pool,
# which cost a thread hand-off per dependency per request (a tenth of the gateway's CPU).
async def settings_dep() -> GatewaySettings:
    return get_settings()


async def get_http(request: Request) -> aiohttp.ClientSession:
    client: aiohttp.ClientSession = request.app.state.http
    return client


async def get_registry(request: Request) -> ModelRegistry:
    registry: ModelRegistry = request.app.state.registry
    return registry


async def get_stages(request: Request) -> Stages:
    stages: Stages = request.app.state.stages
    return stages


async def get_popular(request: Request) -> PopularCache:
    popular: PopularCache = request.app.state.popular
    return popular


async def get_events(request: Request) -> EventStore:
    events: EventStore = request.app.state.events
    return events


async def get_catalog(request: Request) -> CatalogMirror:
    catalog: CatalogMirror = request.app.state.catalog
    return catalog


async def get_pipeline(request: Request) -> Pipeline:
    pipeline: Pipeline = request.app.state.pipeline
    return pipeline


async def get_served(request: Request) -> ServedLog:
    served: ServedLog = request.app.state.served
    return served


async def get_experiments(request: Request) -> ExperimentWatch:
    watch: ExperimentWatch = request.app.state.experiments
    return watch


async def get_admission(request: Request) -> InFlightLimit:
    admission: InFlightLimit = request.app.state.admission
    return admission


async def get_answer_cache(request: Request) -> AnswerCache:
    cache: AnswerCache = request.app.state.answers
    return cache


SettingsDep = Annotated[GatewaySettings, Depends(settings_dep)]
StagesDep = Annotated[Stages, Depends(get_stages)]
PopularDep = Annotated[PopularCache, Depends(get_popular)]
HttpDep = Annotated[aiohttp.ClientSession, Depends(get_http)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
AdmissionDep = Annotated[InFlightLimit, Depends(get_admission)]
EventsDep = Annotated[EventStore, Depends(get_events)]
CatalogDep = Annotated[CatalogMirror, Depends(get_catalog)]
PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]
ExperimentsDep = Annotated[ExperimentWatch, Depends(get_experiments)]
ServedDep = Annotated[ServedLog, Depends(get_served)]
AnswerCacheDep = Annotated[AnswerCache, Depends(get_answer_cache)]
