"""The whole system as a user runs it: real Redis, Celery worker and three uvicorn processes."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from services.launcher.stack import Stack
from shared.stats import ranker_members
from tests.conftest import (
    DATA_DIR,
    SMALL_TRAIN,
    pids,
    running_stack,
    wait_for_job,
    wait_for_version,
)

pytestmark = pytest.mark.integration


def test_recommend_answers_k_items_sorted_by_score(stack: Stack) -> None:
    r = httpx.get(f"{stack.gateway_url}/recommend", params={"user": "U1", "k": 10}, timeout=10)
    assert r.status_code == 200
    items = r.json()
    assert len(items) == 10
    for item in items:
        assert {"product", "price", "age", "score"} <= item.keys()
        assert item["product"].startswith("P")
        assert item["price"] > 0
        assert 18 <= item["age"] <= 75  # U1 is a known user: their age comes along
    scores = [item["score"] for item in items]
    assert scores == sorted(scores, reverse=True)
    assert len({item["product"] for item in items}) == 10
    assert int(r.headers["X-Model-Version"]) >= 1


def test_unknown_user_gets_cold_start_items(stack: Stack) -> None:
    r = httpx.get(
        f"{stack.gateway_url}/recommend", params={"user": "new-visitor-42", "k": 5}, timeout=10
    )
    assert r.status_code == 200
    items = r.json()
    assert len(items) == 5
    assert all(item["age"] is None and item["reason"] == "popular" for item in items)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "user"),
        ({"user": ""}, "user"),
        ({"user": "U" * 129}, "user"),
        ({"user": "U1\x00DROP"}, "user"),
        ({"user": "U1", "k": 0}, "k"),
        ({"user": "U1", "k": 101}, "k"),
        ({"user": "U1", "k": "ten"}, "k"),
    ],
)
def test_bad_recommend_requests_answer_4xx_json(
    stack: Stack, params: dict[str, str | int], field: str
) -> None:
    r = httpx.get(f"{stack.gateway_url}/recommend", params=params, timeout=10)
    assert r.status_code == 422
    assert field in str(r.json()["detail"])


def test_bad_train_requests_answer_4xx_json(stack: Stack) -> None:
    r = httpx.post(
        f"{stack.gateway_url}/train",
        content=b"{not json",
        timeout=10,
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422 and "JSON" in str(r.json()["detail"])
    r = httpx.post(f"{stack.gateway_url}/train", json={"dataset": "nope"}, timeout=10)
    assert r.status_code == 422 and "dataset" in str(r.json()["detail"])
    assert httpx.get(f"{stack.gateway_url}/train/no-such-job", timeout=10).status_code == 404
    assert httpx.post(f"{stack.gateway_url}/models/999/activate", timeout=10).status_code == 404


def test_models_list_two_stage_beating_popularity(stack: Stack) -> None:
    models = httpx.get(f"{stack.gateway_url}/models", timeout=10).json()
    current = next(v for v in models["versions"] if v["version"] == models["current"])
    metrics = current["metrics"]
    assert metrics["ndcg@10"] > 1.2 * metrics["popularity_ndcg@10"]
    assert metrics["recall@10"] > metrics["popularity_recall@10"]


def test_retrain_through_queue_swaps_version_without_restart(stack: Stack) -> None:
    before_pids = pids(stack)
    r = httpx.get(f"{stack.gateway_url}/recommend", params={"user": "U1"}, timeout=10)
    before = int(r.headers["X-Model-Version"])

    r = httpx.post(f"{stack.gateway_url}/train", json=SMALL_TRAIN, timeout=10)
    assert r.status_code == 202
    status = wait_for_job(stack.gateway_url, r.json()["job_id"])
    assert status.state == "SUCCESS", status.error
    assert status.model_version is not None and status.model_version > before
    assert status.promoted, status.reason  # same data, same recipe: not worse, so promoted
    wait_for_version(stack.gateway_url, status.model_version)

    r = httpx.get(f"{stack.gateway_url}/recommend", params={"user": "U1"}, timeout=10)
    assert int(r.headers["X-Model-Version"]) == status.model_version
    assert len(r.json()) == 10
    stack.check_alive()
    assert pids(stack) == before_pids  # swapped in place: no service restarted


def test_rollback_by_activation(stack: Stack) -> None:
    models = httpx.get(f"{stack.gateway_url}/models", timeout=10).json()
    older = min(v["version"] for v in models["versions"])
    r = httpx.post(f"{stack.gateway_url}/models/{older}/activate", timeout=10)
    assert r.status_code == 200 and r.json() == {"current": older}
    wait_for_version(stack.gateway_url, older)
    httpx.post(f"{stack.gateway_url}/models/{models['current']}/activate", timeout=10)
    wait_for_version(stack.gateway_url, models["current"])


def test_every_service_reports_health_readiness_and_metrics(stack: Stack) -> None:
    s = stack.settings
    for port in (s.gateway_port, s.candidate_port, s.ranker_port):
        base = f"http://{s.host}:{port}"
        assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
        assert httpx.get(f"{base}/readyz", timeout=10).status_code == 200
        metrics = httpx.get(f"{base}/metrics", timeout=10).text
        assert "recsys_request_seconds" in metrics


def test_the_ranker_compiles_its_current_version_in_the_background(stack: Stack) -> None:
    """After a load the ranker predicts with LightGBM; a child process compiles the trees and
    the compiled members take over (visible in /metrics) while it keeps answering."""
    s = stack.settings
    url = f"http://{s.host}:{s.ranker_port}/metrics"

    deadline = time.monotonic() + 120
    members, native = ranker_members(httpx.get(url, timeout=10).text)
    while native < members:
        assert time.monotonic() < deadline, f"ranker not compiled: {native} of {members}"
        time.sleep(0.5)
        members, native = ranker_members(httpx.get(url, timeout=10).text)
    assert members >= 1
    r = httpx.get(f"{stack.gateway_url}/recommend", params={"user": "U1"}, timeout=10)
    assert r.status_code == 200 and "X-Degraded" not in r.headers and len(r.json()) == 10


@pytest.mark.timeout(900)
@pytest.mark.skipif(not (DATA_DIR / "online-retail").is_dir(), reason="team data folder absent")
def test_train_on_online_retail_through_the_queue_serves_real_products(
    redis_url: str, tmp_path: Path
) -> None:
    # A stack of its own (Redis database 2): the shared one keeps serving synthetic users.
    with running_stack(redis_url, 2, tmp_path, train=False) as stack:
        body = {"dataset": "online-retail", "params": {"tune_budget_seconds": 30}}
        r = httpx.post(f"{stack.gateway_url}/train", json=body, timeout=10)
        assert r.status_code == 202
        status = wait_for_job(stack.gateway_url, r.json()["job_id"], timeout=800)
        assert status.state == "SUCCESS", status.error
        assert status.promoted, status.reason
        assert status.model_version is not None
        wait_for_version(stack.gateway_url, status.model_version, user="17850")
        r = httpx.get(f"{stack.gateway_url}/recommend", params={"user": "17850"}, timeout=10)
        items = r.json()
        assert r.status_code == 200 and len(items) == 10
        # real StockCodes with their real descriptions and median prices
        assert all(item["title"] and item["title"] != item["product"] for item in items)
        assert all(item["price"] > 0 for item in items)
        models = httpx.get(f"{stack.gateway_url}/models", timeout=10).json()
        mine = next(v for v in models["versions"] if v["version"] == status.model_version)
        assert mine["dataset"] == "online-retail"
        assert mine["metrics"]["ndcg@10"] > mine["metrics"]["popularity_ndcg@10"]
        # the worker chose the recipe on validation splits and the version says how
        detail = httpx.get(f"{stack.gateway_url}/models/{status.model_version}", timeout=10).json()
        tuning = detail["tuning"]
        assert tuning["trials"] and tuning["decision"] in ("two_stage", "stage_one")
        assert {"two_stage", "stage_one", "popularity"} <= tuning["validation_ndcg"].keys()
        assert detail["params"]["recipe"]["tune_budget_seconds"] == 30


def test_path_outside_the_data_root_is_refused(stack: Stack) -> None:
    r = httpx.post(
        f"{stack.gateway_url}/train",
        json={
            "dataset": "csv",
            "data_path": "/etc/passwd",
            "csv": {"user_col": "a", "item_col": "b"},
        },
        timeout=10,
    )
    # Refused at the gateway, before anything is queued: 422 naming the field.
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert detail[0]["loc"] == ["body", "data_path"]
    assert "outside the data folder" in detail[0]["msg"]
