from __future__ import annotations

import asyncio
import gc
import uuid
import weakref
from collections.abc import Iterator
from types import ModuleType

import pytest

from services.gateway import app as gateway
from services.gateway.settings import get_settings as gateway_settings
from services.ranker import app as ranker
from shared.runtime import freeze_startup_heap
from shared.settings import get_common_settings


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic GC frees it


@pytest.fixture(autouse=True)
def thawed() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_what_exists_is_frozen_what_comes_later_is_still_collected() -> None:
    before = Node()
    freeze_startup_heap()
    assert gc.get_freeze_count() > 0
    later = Node()
    gone = weakref.ref(later)
    del later
    gc.collect()
    assert gone() is None  # created after the freeze: collected as usual
    assert before.me is before


def clear_settings() -> None:
    for cached in (ranker.get_settings, gateway_settings, get_common_settings):
        cached.cache_clear()


@pytest.mark.parametrize("service", [ranker, gateway])
def test_a_service_freezes_its_heap_when_it_starts(
    service: ModuleType, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECSYS_REDIS_URL", redis_url)
    monkeypatch.setenv("RECSYS_KEY_PREFIX", f"runtime-{uuid.uuid4().hex[:8]}")
    clear_settings()
    app = service.create_app()
    assert gc.get_freeze_count() == 0

    async def start_and_stop() -> int:
        async with app.router.lifespan_context(app):
            return gc.get_freeze_count()

    assert asyncio.run(start_and_stop()) > 0
    clear_settings()
