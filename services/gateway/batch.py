"""POST /recommend/batch: one list per user for many users (nightly e-mails), streamed as JSON
lines in the request's order, every full answer from one model version."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse

from services.gateway.answers import live_items, log_served
from services.gateway.deps import PipelineDep, ServedDep
from services.gateway.pipeline import Answer, Pipeline
from shared.observability import request_id
from shared.schemas.rules import Rules
from shared.schemas.serving import BatchLine, BatchRequest
from shared.served import ServedLog

log = logging.getLogger(__name__)
router = APIRouter()
# Users answered at once: enough to keep both stages busy, few enough to leave room for
# the interactive /recommend traffic beside a batch.
CONCURRENCY = 8
# BatchLine's schema for the OpenAPI document: its nested models are the components /recommend
# already puts there (a schema's own `$defs` would not resolve inside the document).
_LINE_SCHEMA = {
    k: v
    for k, v in BatchLine.model_json_schema(ref_template="#/components/schemas/{model}").items()
    if k != "$defs"
}


def _line(user: str, answer: Answer | None, rid: str | None) -> bytes:
    if answer is None:
        line = BatchLine(user=user, version=None, items=[], error="no model is served yet")
    else:
        line = BatchLine(user=user, version=answer.version, items=answer.items,
                         degraded=answer.degraded, request_id=rid)  # fmt: skip
    return orjson.dumps(line.model_dump(exclude={"items": {"__all__": {"explanation"}}})) + b"\n"


async def _answer(
    pipeline: Pipeline, req: BatchRequest, rules: Rules, user: str, version: int | None
) -> Answer | None:
    answer = await pipeline.answer(user, rules.fetch_size(req.k), req.filters, version=version)
    if answer is not None and rules.active:
        answer = await pipeline.with_rules(answer, rules, req.k, user, explain=False)
    return answer


async def _lines(
    pipeline: Pipeline, served: ServedLog, req: BatchRequest, rules: Rules
) -> AsyncIterator[bytes]:
    """The first user's full answer fixes the version; the others are pinned to it. With
    `log_served`, each list is logged as served (attribution, online metrics) under "<request
    id>.<its line>", the `request_id` its line carries; in no experiment arm: the batch is one
    version."""
    version = req.version
    users = req.users
    base = (request_id() or uuid.uuid4().hex)[:120]  # a line's id stays within 128 characters
    i = 0
    while i < len(users):
        chunk = users[i : i + (1 if version is None else CONCURRENCY)]
        answers = await asyncio.gather(*(_answer(pipeline, req, rules, u, version) for u in chunk))
        lines: list[tuple[str, Answer | None, str | None]] = []
        for n, (user, answer) in enumerate(zip(chunk, answers, strict=True), start=i + 1):
            rid = None
            if answer is not None:
                items = live_items(answer.items, pipeline.catalog, req.filters)
                answer = Answer(items, answer.version, answer.degraded)
                if version is None and answer.degraded is None:
                    version = answer.version
                rid = f"{base}.{n}" if req.log_served else None
            lines.append((user, answer, rid))
        logged = [(u, a, rid) for u, a, rid in lines if a is not None and rid is not None]
        await asyncio.gather(*(log_served(served, u, a, rid=rid) for u, a, rid in logged))
        for user, answer, rid in lines:
            yield _line(user, answer, rid)
        i += len(chunk)


@router.post(
    "/recommend/batch",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "one JSON object per line and user, in the request's order",
            "content": {"application/x-ndjson": {"schema": _LINE_SCHEMA}},
        },
    },
)
async def recommend_batch(req: BatchRequest, pipeline: PipelineDep, served: ServedDep) -> Any:
    """Lists for up to 1,000 users with one request; for millions, `recsys recommend`."""
    rules = req.rules or pipeline.settings.default_rules or Rules()
    try:
        rules.check_k(req.k)
    except ValueError as exc:
        detail = [{"loc": ["body", "rules", "pin"], "msg": str(exc), "type": "value_error"}]
        return JSONResponse({"detail": detail}, status_code=422)
    lines = _lines(pipeline, served, req, rules)
    return StreamingResponse(lines, media_type="application/x-ndjson")
