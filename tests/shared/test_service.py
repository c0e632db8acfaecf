"""What every model-serving service answers on /readyz, as a client over HTTP would read it."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI

from shared.registry import ModelRegistry
from shared.service import create_model_service
from shared.settings import CommonSettings


def _build(artifacts: dict[str, bytes]) -> str:
    if artifacts["m.txt"] == b"other features":
        raise ValueError("model was built with a different feature set than this code serves")
    return artifacts["m.txt"].decode()


def _readyz(app: FastAPI) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://stage") as client:
            return await client.get("/readyz")

    return asyncio.run(go())


def test_readiness_names_a_refused_current_version_while_the_older_one_serves(
    registry: ModelRegistry, redis_url: str
) -> None:
    common = CommonSettings(redis_url=redis_url, key_prefix=registry.channel.rsplit(":", 2)[0])
    app, holder = create_model_service("stage", common, ["m.txt"], _build)
    publish = registry.publish
    first, _ = publish({"m.txt": b"ok"}, dataset="d", params={}, metrics={})
    asyncio.run(holder.sync())
    assert _readyz(app).json() == {
        "status": "ok", "service": "stage", "version": first.version, "refused": None
    }  # fmt: skip
    second, _ = publish({"m.txt": b"other features"}, dataset="d", params={}, metrics={})
    asyncio.run(holder.sync())
    r = _readyz(app)
    assert r.status_code == 200 and r.json()["version"] == first.version  # still serving
    assert r.json()["refused"] == (
        f"model version {second.version} refused: "
        "model was built with a different feature set than this code serves"
    )


def test_without_a_model_readiness_is_503_with_the_reason(
    registry: ModelRegistry, redis_url: str
) -> None:
    common = CommonSettings(redis_url=redis_url, key_prefix=registry.channel.rsplit(":", 2)[0])
    app, holder = create_model_service("stage", common, ["m.txt"], _build)
    assert _readyz(app).json() == {"detail": "no model loaded yet"}
    refused, _ = registry.publish({"m.txt": b"other features"}, dataset="d", params={}, metrics={})
    asyncio.run(holder.sync())
    r = _readyz(app)
    assert r.status_code == 503
    assert r.json()["detail"].startswith(f"model version {refused.version} refused: ")
