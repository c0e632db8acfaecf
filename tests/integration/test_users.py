"""Users against real processes: a profile answers for a user without history; products shown
too often without an interaction go last (demotion on in this stack); erasure leaves nothing of
the user in Redis or in the ingested Parquet, and the next version is trained without them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pandas as pd
import pytest
import redis

from services.launcher.stack import Stack
from shared.client import NotFoundError, RecsysClient
from shared.schemas.serving import EventIn, EventType, RecommendedItem
from shared.users import UserHistory, UserProfile
from tests.conftest import SMALL_TRAIN_REQUEST, running_stack, wait_for_job, wait_for_version

pytestmark = pytest.mark.integration
DB = 7


@pytest.fixture(scope="module")
def ustack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of its own: its worker's work folder (ingested Parquet) is this test's."""
    work = tmp_path_factory.mktemp("users-work")
    env = {"RECSYS_WORK_DIR": str(work), "RECSYS_DEMOTE_AFTER_IMPRESSIONS": "3"}
    with running_stack(redis_url, DB, tmp_path_factory.mktemp("ustack"), env=env) as s:
        yield s


@pytest.fixture
def uapi(ustack: Stack) -> Iterator[RecsysClient]:
    with RecsysClient(ustack.gateway_url) as client:
        yield client


def _recommend(api: RecsysClient, user: str) -> list[RecommendedItem]:
    return api.recommend(user, k=10).items


def _send(api: RecsysClient, user: str, product: str, kind: EventType) -> None:
    api.send_event(EventIn(user=user, product=product, type=kind))


def test_a_profile_answers_for_a_user_without_history(ustack: Stack, uapi: RecsysClient) -> None:
    user = "new visitor zoë"
    assert {i.reason for i in _recommend(uapi, user)} == {"popular"}
    assert uapi.put_user(user, UserProfile(age=33, segment="seg1")).segment == "seg1"
    reasons = {i.reason for i in _recommend(uapi, user)}
    assert "popular_in:seg1" in reasons
    assert uapi.get_user(user).age == 33
    with pytest.raises(NotFoundError) as nobody:
        uapi.get_user("nobody-here")
    assert "nobody-here" in str(nobody.value.detail)
    # raw httpx: the client's UserProfile refuses each of these before sending it
    url = f"{ustack.gateway_url}/users/{quote(user, safe='')}"
    for bad in ({"age": -1}, {"age": 1000}, {"segment": ""}, {"colour": "red"}):
        assert httpx.put(url, json=bad, timeout=10).status_code == 422


def test_products_shown_too_often_go_last_until_taken(uapi: RecsysClient) -> None:
    user = "U7"
    top = _recommend(uapi, user)[0].product
    for _ in range(2):
        _send(uapi, user, top, "impression")
    assert _recommend(uapi, user)[0].product == top  # twice is not too often
    _send(uapi, user, top, "impression")
    after = _recommend(uapi, user)
    assert after[0].product != top
    assert [i.reason.endswith(";demoted") for i in after if i.product == top] in ([], [True])
    history = uapi.user_history(user)
    assert all(e.type != "impression" for e in history.events)  # counted apart
    _send(uapi, user, top, "click")  # an interaction: its impressions count from 0 again
    assert not any(i.reason.endswith(";demoted") for i in _recommend(uapi, user))


def _events_dir(stack: Stack) -> Path:
    return Path(stack.extra_env["RECSYS_WORK_DIR"]) / "events"


def _ingest(stack: Stack) -> None:
    env = {**os.environ, **stack.extra_env}
    run = subprocess.run(
        [sys.executable, "-m", "services.trainer.ingest"], env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr


def _wait_served(stack: Stack, user: str, n: int) -> None:
    """Until the served-list stream holds `n` lists for `user` (the gateway logs them after it
    answers)."""
    client = redis.Redis.from_url(stack.extra_env["RECSYS_REDIS_URL"])
    deadline = time.monotonic() + 10
    while True:
        served: Any = client.xrange("recsys:served")
        mine = [1 for _, f in served if f'"user":"{user}"'.encode() in f[b"served"]]
        if len(mine) == n:
            break
        assert time.monotonic() < deadline, f"{len(mine)} lists of {user} in the stream, not {n}"
        time.sleep(0.05)
    client.close()


def _parquet_users(stack: Stack) -> list[str]:
    files = sorted(_events_dir(stack).glob("events-*.parquet"))
    return [u for f in files for u in pd.read_parquet(f)["user"].tolist()]


def test_erasure_leaves_nothing_and_the_next_version_lacks_the_user(
    ustack: Stack, uapi: RecsysClient
) -> None:
    user = "U5"  # a user of the training data, with history
    assert any(i.reason.startswith("similar_to:") for i in _recommend(uapi, user))
    product = _recommend(uapi, user)[0].product
    for kind in ("click", "hide"):
        _send(uapi, user, product, kind)
    uapi.put_user(user, UserProfile(segment="seg0"))
    _wait_served(ustack, user, 2)  # the two answers above, logged for attribution
    _ingest(ustack)  # some of their events and lists are in Parquet already (and out of Redis)
    _send(uapi, "U6", product, "click")
    _send(uapi, user, product, "view")  # and one event and one list still in the stream
    _recommend(uapi, user)
    _wait_served(ustack, user, 1)
    assert user in _parquet_users(ustack)
    history = uapi.user_history(user)
    assert len(history.events) == 3 and history.hidden == [product]

    erased = uapi.delete_user(user)
    assert erased.recent_events == 3 and erased.hidden_products == 1
    # what the stream still held: ingested entries left Redis, the erase job takes them from Parquet
    assert erased.profile is True and erased.stream_events == 1
    # the larger of the attribution records and the stream entries removed (below: none left)
    assert erased.served_lists >= 1
    after = uapi.user_history(user)
    assert after == UserHistory(user=user, profile=None, events=[], hidden=[])
    client = redis.Redis.from_url(ustack.extra_env["RECSYS_REDIS_URL"])
    entries: Any = client.xrange("recsys:events")
    stream: list[bytes] = [f[b"event"] for _, f in entries]
    assert not any(f'"user":"{user}"'.encode() in e for e in stream)
    assert any(b'"user":"U6"' in e for e in stream)  # only theirs went
    served: Any = client.xrange("recsys:served")
    assert not any(f'"user":"{user}"'.encode() in f[b"served"] for _, f in served)
    assert not [k for k in client.scan_iter(match=f"*{user}*")]  # no key names them
    client.close()
    deadline = time.monotonic() + 60
    while user in _parquet_users(ustack):  # the trainer's erase job
        assert time.monotonic() < deadline, "the user's rows are still in Parquet"
        time.sleep(0.5)
    _ingest(ustack)
    assert user not in _parquet_users(ustack) and "U6" in _parquet_users(ustack)

    # the next version is trained without them (they are in the synthetic dataset): a user it
    # does not know, answered cold
    job = uapi.train(SMALL_TRAIN_REQUEST)
    status = wait_for_job(ustack.gateway_url, job.job_id)
    assert status.state == "SUCCESS", status.error
    assert status.model_version is not None
    wait_for_version(ustack.gateway_url, status.model_version)
    assert {i.reason for i in _recommend(uapi, user)} == {"popular"}
    assert any(i.reason.startswith("similar_to:") for i in _recommend(uapi, "U4"))
