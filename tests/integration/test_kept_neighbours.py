"""Kept neighbours against real processes: with HNSW serving (as for a catalog past the
neighbour table), the candidate service searches a seed's neighbours once and keeps them, and
its /metrics says how often requests found them kept."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from services.launcher.stack import Stack
from shared.client import RecsysClient
from shared.stats import kept_neighbours
from tests.conftest import running_stack

pytestmark = pytest.mark.integration
DB = 11


@pytest.fixture(scope="module")
def hstack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {
        "RECSYS_ANN_BACKEND": "hnsw",
        "RECSYS_ANN_MIN_ITEMS": "0",  # HNSW at any width
        "GATEWAY_ANSWER_CACHE_SECONDS": "0",
    }  # every request reaches the candidate stage
    with running_stack(redis_url, DB, tmp_path_factory.mktemp("hstack"), env=env) as s:
        yield s


def lookups(stack: Stack) -> dict[str, float]:
    url = f"http://{stack.settings.host}:{stack.settings.candidate_port}/metrics"
    return kept_neighbours(httpx.get(url, timeout=5).text)


def test_a_seed_is_searched_once_then_found_kept(hstack: Stack) -> None:
    with RecsysClient(hstack.gateway_url) as api:
        first = api.recommend("U1", k=10)
        after_first = lookups(hstack)
        again = api.recommend("U1", k=10)  # the same seeds
        after_again = lookups(hstack)
    assert after_first["miss"] > 0 and after_first["items"] == after_first["miss"]
    assert after_again["miss"] == after_first["miss"]  # nothing searched again
    assert after_again["hit"] - after_first["hit"] == after_first["miss"]
    assert [i.product for i in again.items] == [i.product for i in first.items]
