"""The floor of `make bench`: a FastAPI endpoint that does no work and answers a JSON list the
size of a real /recommend answer (k items), from one uvicorn worker.

    uvicorn benchmarks.trivial_app:app --port 9000
"""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Query
from fastapi.responses import Response
from orjson import dumps

app = FastAPI(title="trivial floor")

_ITEM = {
    "product": "85123A",
    "score": 1.2345678,
    "price": 2.55,
    "age": None,
    "title": "WHITE HANGING HEART T-LIGHT HOLDER",
    "category": None,
    "reason": "similar_to:84029E",
}


@app.get("/recommend")
async def recommend(user: str, k: Annotated[int, Query(ge=1, le=100)] = 10) -> Response:
    return Response(dumps([_ITEM] * k), media_type="application/json")
