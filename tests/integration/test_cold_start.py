"""New catalog products and repeat-purchase shops, against real processes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.launcher.stack import Stack, StackSettings
from shared.client import RecsysClient
from shared.datasets import synthetic
from tests.conftest import SMALL_DATA

pytestmark = pytest.mark.integration

PARAMS = SMALL_DATA
assert isinstance(PARAMS, dict)
DATA = synthetic.generate(**PARAMS)
# SMALL_TRAIN keeps the default of 10 synthetic products that nobody took yet.
NEW_PRODUCTS = {f"P{PARAMS['n_products'] + j + 1}" for j in range(10)}


def test_new_products_reach_users_through_their_content(api: RecsysClient) -> None:
    users = [f"U{u}" for u in range(1, 21)]
    reached = 0
    for user in users:
        items = api.recommend(user).items
        assert len(items) == 10
        new = [i for i in items if i.reason == "cold_start"]
        assert {i.product for i in new} <= NEW_PRODUCTS
        assert all(i.title and i.category and i.price is not None and i.price > 0 for i in new)
        reached += bool(new)
    print(f"{reached}/{len(users)} users were shown a product nobody had taken yet")
    assert reached >= len(users) // 2


@pytest.fixture(scope="module")
def repeat_shop(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second candidate service on the same registry, configured for repeat purchases."""
    workdir: Path = tmp_path_factory.mktemp("repeat")
    (workdir / "logs").mkdir()
    env = {
        "RECSYS_REDIS_URL": stack.env()["RECSYS_REDIS_URL"],
        "RECSYS_EXCLUDE_EVENT_TYPES": "[]",
    }
    other = Stack(StackSettings.on_free_ports(), workdir, extra_env=env)
    other.start_service("candidate")
    url = f"http://{other.settings.host}:{other.settings.candidate_port}"
    deadline = time.monotonic() + 60
    while True:
        other.check_alive()
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the repeat-purchase candidate service never got ready"
        time.sleep(0.2)
    yield url
    other.stop()


def _candidates(url: str, user: str) -> set[str]:
    r = httpx.post(f"{url}/candidates", json={"user": user, "n": 100}, timeout=10)
    assert r.status_code == 200
    return set(r.json()["candidates"]["products"])


def test_bought_items_come_back_only_in_a_repeat_purchase_shop(
    stack: Stack, repeat_shop: str
) -> None:
    default_url = f"http://{stack.settings.host}:{stack.settings.candidate_port}"
    ints = DATA.interactions
    for user in ("U3", "U8", "U15"):
        bought = set(ints.loc[ints["user_id"] == user, "product_id"])
        assert not _candidates(default_url, user) & bought  # the default excludes purchases
        again = _candidates(repeat_shop, user) & bought
        print(f"{user}: {len(again)} of {len(bought)} bought products proposed again")
        assert again
