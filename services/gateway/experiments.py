"""A/B experiments: `POST /experiments` (admin) starts one, `GET /experiments/{name}` reports it
(per-arm counts and rates, each arm against the control with an always-valid interval, a
verdict), `POST /experiments/{name}/stop` and `/promote` (admin) end it, and
`POST /experiments/{name}/assignments` tells which arm serves which users."""

from __future__ import annotations

from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from services.gateway.deps import ExperimentsDep, PipelineDep, RegistryDep
from services.gateway.security import AdminDep
from shared.artifacts import CorruptArtifactError
from shared.experiments import ExperimentError, assign
from shared.observability import EXPERIMENT_ENDS
from shared.registry import ModelRegistry, UnknownVersionError
from shared.schemas.experiments import (
    ArmAssignments,
    Assignments,
    Experiment,
    ExperimentIn,
    ExperimentReport,
    PromoteRequest,
    StopRequest,
)
from shared.schemas.serving import ErrorBody

router = APIRouter()
# Loading a version in the stages (from Redis, verified) takes seconds on a big catalog.
WARM_SECONDS = 60.0
ExperimentName = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "no experiment by that name"},
}


def _failed(exc: ExperimentError) -> JSONResponse:
    return JSONResponse({"detail": exc.detail}, status_code=exc.status)


def _unverified(registry: ModelRegistry, versions: set[int]) -> str | None:
    """Why an arm's version cannot serve, or None: each must exist and pass its sha256 checks."""
    for version in sorted(versions):
        try:
            registry.load_artifacts(version)
        except UnknownVersionError:
            return f"model version {version} does not exist"
        except CorruptArtifactError as exc:
            return f"model version {version} does not verify: {exc}"
    return None


@router.post(
    "/experiments",
    response_model=Experiment,
    status_code=201,
    responses={
        409: {"model": ErrorBody, "description": "the name is taken, or another one runs"},
        422: {"description": "invalid arms (shares, names) or a version that does not verify"},
        503: {"model": ErrorBody, "description": "the stages could not load a version"},
    },
)
async def create(
    asked: ExperimentIn,
    watch: ExperimentsDep,
    registry: RegistryDep,
    pipeline: PipelineDep,
    _: AdminDep,
) -> Any:
    """Start it now: users are bucketed into arms by a salted hash of their id, each arm's
    answers served end to end by its version. One experiment runs at a time."""
    versions = {a.version for a in asked.arms}
    if (why := await to_thread.run_sync(_unverified, registry, versions)) is not None:
        detail = [{"loc": ["body", "arms"], "msg": why, "type": "value_error"}]
        return JSONResponse({"detail": detail}, status_code=422)
    for version in sorted(versions):  # loaded before it starts: first answers are not slow
        if (failed := await pipeline.warm(version, WARM_SECONDS)) is not None:
            status = 422 if failed.status == 409 else 503
            why = f"the stages cannot serve model version {version}: {failed}"
            return JSONResponse({"detail": why}, status_code=status)
    try:
        exp = await watch.store.create(asked)
    except ExperimentError as exc:
        return _failed(exc)
    watch.running = exp  # this gateway buckets at once; the others at their next read
    return exp


@router.get("/experiments", response_model=list[Experiment])
async def list_experiments(watch: ExperimentsDep) -> list[Experiment]:
    return await watch.store.all()


@router.get("/experiments/{name}", response_model=ExperimentReport, responses=_ERRORS)
async def report(name: ExperimentName, watch: ExperimentsDep) -> Any:
    store = watch.store
    exp = await store.get(name)
    if exp is None:
        return JSONResponse({"detail": f"no experiment named {name!r}"}, status_code=404)
    return await store.report(exp)


@router.post("/experiments/{name}/stop", response_model=Experiment, responses=_ERRORS)
async def stop(
    name: ExperimentName, watch: ExperimentsDep, _: AdminDep, body: StopRequest | None = None
) -> Any:
    """All traffic back on the current version. Stopping an ended experiment changes nothing."""
    try:
        exp, by_me = await watch.store.end(name, (body or StopRequest()).reason)
    except ExperimentError as exc:
        return _failed(exc)
    if by_me:
        EXPERIMENT_ENDS.labels(name, "stopped").inc()
    if watch.running is not None and watch.running.name == name:
        watch.running = None
    return exp


@router.post(
    "/experiments/{name}/promote",
    response_model=Experiment,
    responses={
        **_ERRORS,
        409: {"model": ErrorBody, "description": "ended already, or no winner to promote"},
    },
)
async def promote(
    name: ExperimentName,
    watch: ExperimentsDep,
    registry: RegistryDep,
    _: AdminDep,
    body: PromoteRequest | None = None,
) -> Any:
    """The arm's version becomes current (default: the verdict's winner) and the experiment
    ends. A stopped experiment cannot be promoted: a guardrail or a person ended it."""
    exp = await watch.store.get(name)
    if exp is None:
        return JSONResponse({"detail": f"no experiment named {name!r}"}, status_code=404)
    if exp.status != "running":
        return JSONResponse({"detail": f"experiment {name!r} is {exp.status}"}, status_code=409)
    chosen = (body or PromoteRequest()).arm
    if chosen is None:
        chosen = (await watch.store.report(exp)).winner
        if chosen is None:
            why = "no arm wins yet: name the arm to promote, or wait for a verdict"
            return JSONResponse({"detail": why}, status_code=409)
    arm = next((a for a in exp.arms if a.name == chosen), None)
    if arm is None:
        detail = [{"loc": ["body", "arm"], "msg": f"no arm {chosen!r}", "type": "value_error"}]
        return JSONResponse({"detail": detail}, status_code=422)
    await to_thread.run_sync(registry.activate, arm.version)
    try:
        ended, by_me = await watch.store.end(name, f"arm {arm.name} promoted", promoted=arm.name)
    except ExperimentError as exc:
        return _failed(exc)
    if by_me:
        EXPERIMENT_ENDS.labels(name, "promoted").inc()
    watch.running = None
    return ended


@router.post("/experiments/{name}/assignments", response_model=ArmAssignments, responses=_ERRORS)
async def assignments(name: ExperimentName, body: Assignments, watch: ExperimentsDep) -> Any:
    """The arm of each user (up to 1,000 per call): the same as their answers carry in
    `X-Experiment-Arm`, for joining with the shop's own analytics."""
    exp = await watch.store.get(name)
    if exp is None:
        return JSONResponse({"detail": f"no experiment named {name!r}"}, status_code=404)
    arms = {user: assign(exp, user).name for user in body.users}
    return ArmAssignments(experiment=exp.name, arms=arms)
