from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Callable, Iterator
from types import ModuleType

import pytest
from fastapi import FastAPI

from services.gateway import app as gateway
from services.ranker import app as ranker
from shared.runtime import freeze_startup_heap


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


@pytest.mark.parametrize("service", [ranker, gateway])
def test_a_service_freezes_its_heap_when_it_starts(
    service: ModuleType, bare_service: Callable[[ModuleType], FastAPI]
) -> None:
    app = bare_service(service)
    assert gc.get_freeze_count() == 0

    async def start_and_stop() -> int:
        async with app.router.lifespan_context(app):
            return gc.get_freeze_count()

    assert asyncio.run(start_and_stop()) > 0
