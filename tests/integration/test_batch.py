"""Batch recommendations against real processes: one line per user in order, one model version,
filters held; the CLI resumes where it stopped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest

from services.launcher.stack import Stack
from shared.client import RecsysClient
from shared.schemas.serving import BatchRequest, ItemFilters

pytestmark = pytest.mark.integration
USERS = [f"U{i}" for i in range(1, 41)] + ["someone-new", "zoë@example.com"]


def test_a_batch_answers_each_user_in_order_with_one_version(stack: Stack) -> None:
    request = BatchRequest(users=USERS, k=5, filters=ItemFilters(max_price=50.0))
    with RecsysClient(stack.gateway_url, timeout=60) as api:
        lines = api.recommend_batch(request)
        assert [line.user for line in lines] == USERS
        assert len({line.version for line in lines}) == 1
        assert all(line.degraded is None and line.error is None for line in lines)
        assert all(len(line.items) == 5 for line in lines)
        assert all(i.price is not None and i.price <= 50 for line in lines for i in line.items)
        # the same lists /recommend gives those users
        for line in lines[:3]:
            single = api.recommend(line.user, k=5, max_price=50)
            assert [i.product for i in single.items] == [i.product for i in line.items]
    # raw httpx: the client does not expose the answer's content type
    body = request.model_dump(mode="json", exclude_unset=True)
    r = httpx.post(f"{stack.gateway_url}/recommend/batch", json=body, timeout=60)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"users": [f"u{i}" for i in range(1001)]}, "1000"),
        ({"users": []}, "users"),
        ({"users": ["U1"], "k": 0}, "k"),
        ({"users": ["U1"], "filters": {"min_price": 5, "max_price": 1}}, "min_price"),
        ({"users": ["U1"], "log_served": 0}, "log_served"),  # a boolean, not a number
    ],
)
def test_bad_batches_are_4xx_saying_why(stack: Stack, body: dict[str, object], says: str) -> None:
    # raw httpx: the client's BatchRequest refuses each of these bodies before sending them
    r = httpx.post(f"{stack.gateway_url}/recommend/batch", json=body, timeout=10)
    assert r.status_code in (413, 422) and says in r.text


def test_the_cli_writes_every_user_once_and_resumes(stack: Stack, tmp_path: Path) -> None:
    users = tmp_path / "users.txt"
    users.write_text("\n".join(f"U{i}" for i in range(1, 61)) + "\n")
    out = tmp_path / "out.jsonl"
    recsys = str(Path(sys.executable).parent / "recsys")
    cmd = [recsys, "recommend", "--users", str(users), "--out", str(out), "--k", "3"]
    cmd += ["--gateway", stack.gateway_url, "--chunk", "25"]
    env = {**os.environ, "COLUMNS": "120"}
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    full = out.read_bytes().splitlines()
    assert len(full) == 60
    # as if interrupted: 20 whole lines and half of the 21st
    out.write_bytes(b"\n".join(full[:20]) + b"\n" + full[20][:15])
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resuming: 20 users" in again.stdout
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [line["user"] for line in lines] == [f"U{i}" for i in range(1, 61)]
    assert len({line["version"] for line in lines}) == 1
    assert all(line["request_id"] is None for line in lines)  # not logged unless asked
    logged = tmp_path / "logged.jsonl"
    cmd = [recsys, "recommend", "--users", str(users), "--out", str(logged), "--k", "3"]
    cmd += ["--gateway", stack.gateway_url, "--chunk", "25", "--log-served"]
    third = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert third.returncode == 0, third.stdout + third.stderr
    ids = [orjson.loads(line)["request_id"] for line in logged.read_bytes().splitlines()]
    assert len(ids) == 60 and all(ids) and len(set(ids)) == 60  # one id per list


def test_a_logged_batch_gives_each_list_an_id_its_events_are_attributed_to(stack: Stack) -> None:
    body = {"users": ["U1", "U2", "U3"], "k": 4, "log_served": True}
    rid = "batch-mail-1"
    r = httpx.post(f"{stack.gateway_url}/recommend/batch", json=body, timeout=60,
                   headers={"X-Request-ID": rid})  # fmt: skip
    assert r.status_code == 200
    lines = [orjson.loads(line) for line in r.content.splitlines()]
    assert [line["request_id"] for line in lines] == [f"{rid}.{n}" for n in (1, 2, 3)]
    second = lines[1]
    product = second["items"][2]["product"]
    event = {"user": "U2", "product": product, "type": "click", "request_id": second["request_id"]}
    answer = httpx.post(f"{stack.gateway_url}/events", json=event, timeout=10)
    assert answer.status_code in (200, 202), answer.text
    attribution = answer.json()["attribution"]
    assert (attribution["how"], attribution["position"]) == ("request_id", 3)
    assert attribution["version"] == second["version"]
    # not asked: nothing logged, no ids
    plain = httpx.post(f"{stack.gateway_url}/recommend/batch", json={"users": ["U1"]}, timeout=60)
    assert [orjson.loads(line)["request_id"] for line in plain.content.splitlines()] == [None]
