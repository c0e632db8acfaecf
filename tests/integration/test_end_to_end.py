"""The whole system as a user runs it: real Redis, Celery worker and three uvicorn processes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import orjson
import pytest

from services.launcher.stack import Stack
from shared.client import InvalidRequestError, NotFoundError, RecsysClient
from shared.schemas.serving import EventIn
from shared.schemas.training import CsvOptions, TrainRequest
from shared.stats import ranker_members
from tests.conftest import (
    DATA_DIR,
    SMALL_DATA,
    SMALL_TRAIN_REQUEST,
    pids,
    running_stack,
    wait_for_job,
    wait_for_version,
)

pytestmark = pytest.mark.integration


def test_recommend_answers_k_items_sorted_by_score(api: RecsysClient) -> None:
    answer = api.recommend("U1", k=10)
    # read as RecommendedItem: product, price, age and score are in every item
    items = answer.items
    assert len(items) == 10
    for item in items:
        assert item.product.startswith("P")
        assert item.price is not None and item.price > 0
        assert item.age is not None and 18 <= item.age <= 75  # U1 is known: their age comes along
    scores = [item.score for item in items]
    assert scores == sorted(scores, reverse=True)
    assert len({item.product for item in items}) == 10
    assert answer.version is not None and answer.version >= 1


def test_unknown_user_gets_cold_start_items(api: RecsysClient) -> None:
    items = api.recommend("new-visitor-42", k=5).items
    assert len(items) == 5
    assert all(item.age is None and item.reason == "popular" for item in items)


@pytest.mark.parametrize(
    ("user", "k", "field"),
    [
        ("", 10, "user"),
        ("U" * 129, 10, "user"),
        ("U1\x00DROP", 10, "user"),
        ("U1", 0, "k"),
        ("U1", 101, "k"),
    ],
)
def test_bad_recommend_requests_answer_4xx_json(
    api: RecsysClient, user: str, k: int, field: str
) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        api.recommend(user, k=k)
    assert field in str(refused.value.detail)


@pytest.mark.parametrize(("params", "field"), [({}, "user"), ({"user": "U1", "k": "ten"}, "k")])
def test_recommend_without_a_user_or_with_a_word_for_k_answers_4xx_json(
    stack: Stack, params: dict[str, str], field: str
) -> None:
    # raw httpx: the client always sends a user and an integer k
    r = httpx.get(f"{stack.gateway_url}/recommend", params=params, timeout=10)
    assert r.status_code == 422
    assert field in str(r.json()["detail"])


def test_bad_train_requests_answer_4xx_json(stack: Stack, api: RecsysClient) -> None:
    # raw httpx: the client sends only JSON, and its TrainRequest refuses an unknown dataset
    r = httpx.post(
        f"{stack.gateway_url}/train",
        content=b"{not json",
        timeout=10,
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422 and "JSON" in str(r.json()["detail"])
    r = httpx.post(f"{stack.gateway_url}/train", json={"dataset": "nope"}, timeout=10)
    assert r.status_code == 422 and "dataset" in str(r.json()["detail"])
    with pytest.raises(NotFoundError) as job:
        api.train_status("no-such-job")
    assert "no-such-job" in str(job.value.detail)
    with pytest.raises(NotFoundError) as version:
        api.activate(999)
    assert version.value.detail == "model version 999 does not exist"


def test_models_list_two_stage_beating_popularity(api: RecsysClient) -> None:
    models = api.models()
    current = next(v for v in models.versions if v.version == models.current)
    metrics = current.metrics
    assert metrics["ndcg@10"] > 1.2 * metrics["popularity_ndcg@10"]
    assert metrics["recall@10"] > metrics["popularity_recall@10"]


def test_retrain_through_queue_swaps_version_without_restart(
    stack: Stack, api: RecsysClient
) -> None:
    before_pids = pids(stack)
    before = api.recommend("U1").version
    assert before is not None

    job = api.train(SMALL_TRAIN_REQUEST)
    status = wait_for_job(stack.gateway_url, job.job_id)
    assert status.state == "SUCCESS", status.error
    assert status.model_version is not None and status.model_version > before
    assert status.promoted, status.reason  # same data, same recipe: not worse, so promoted
    wait_for_version(stack.gateway_url, status.model_version)

    answer = api.recommend("U1")
    assert answer.version == status.model_version
    assert len(answer.items) == 10
    stack.check_alive()
    assert pids(stack) == before_pids  # swapped in place: no service restarted


def test_training_runs_below_the_services_cpu_priority(stack: Stack) -> None:
    """The worker's pool process (where tasks run) lowered its priority by TRAINER_NICE (10):
    on a shared machine a retrain leaves the CPU to the services' answers first."""
    worker = stack.procs["worker"].pid
    pool = [int(p) for p in os.listdir("/proc") if p.isdigit() and _parent(int(p)) == worker]
    assert pool, "the worker has no pool process"
    base = os.getpriority(os.PRIO_PROCESS, worker)
    assert {os.getpriority(os.PRIO_PROCESS, p) for p in pool} == {min(base + 10, 19)}
    assert os.getpriority(os.PRIO_PROCESS, stack.procs["gateway"].pid) == base


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def test_rollback_by_activation(stack: Stack, api: RecsysClient) -> None:
    models = api.models()
    assert models.current is not None
    older = min(v.version for v in models.versions)
    assert api.activate(older).current == older
    wait_for_version(stack.gateway_url, older)
    api.activate(models.current)
    wait_for_version(stack.gateway_url, models.current)


def test_a_version_whose_stage_one_is_als_serves_and_takes_new_events(
    stack: Stack, api: RecsysClient
) -> None:
    """Stage one as ALS (the tuner's choice where ALS wins on validation) through the real
    queue, artifact store and services: its artifact loads, trained users are answered, and an
    answer after new events leaves out what was bought (the user's vector solved with it)."""
    current = api.models().current
    assert current is not None
    # a user of the synthetic data no other test sends events for (U7's live history is
    # test_events')
    user = "U288"
    request = TrainRequest.model_validate(
        {
            "dataset": "synthetic",
            "params": {**SMALL_DATA, "tune_budget_seconds": 0, "graph_kind": "als"},
        }
    )
    status = wait_for_job(stack.gateway_url, api.train(request).job_id)
    assert status.state == "SUCCESS", status.error
    assert status.model_version is not None
    recipe = api.model(status.model_version).params["recipe"]  # what was trained
    assert isinstance(recipe, dict) and recipe["graph_kind"] == "als"
    try:
        api.activate(status.model_version)
        wait_for_version(stack.gateway_url, status.model_version)
        before = api.recommend(user, k=10)
        assert before.version == status.model_version and before.degraded is None
        assert len(before.items) == 10
        # the user takes three products of their list's bottom half: the list moves
        for item in before.items[5:8]:
            api.send_event(EventIn(user=user, product=item.product, type="purchase"))
        after = api.recommend(user, k=10)
        assert [i.product for i in after.items] != [i.product for i in before.items]
        assert not {i.product for i in before.items[5:8]} & {i.product for i in after.items}
    finally:
        api.activate(current)
        wait_for_version(stack.gateway_url, current)


def test_every_service_reports_health_readiness_and_metrics(
    stack: Stack, api: RecsysClient
) -> None:
    s = stack.settings
    assert api.health().service == "gateway"
    assert api.ready().status == "ok"
    # the stages' ports are internal; /metrics is Prometheus text, which the client leaves out
    for port in (s.candidate_port, s.ranker_port):
        base = f"http://{s.host}:{port}"
        assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
        assert httpx.get(f"{base}/readyz", timeout=10).status_code == 200
    for port in (s.gateway_port, s.candidate_port, s.ranker_port):
        metrics = httpx.get(f"http://{s.host}:{port}/metrics", timeout=10).text
        assert "recsys_request_seconds" in metrics


def test_the_ranker_compiles_its_current_version_in_the_background(
    stack: Stack, api: RecsysClient
) -> None:
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
    answer = api.recommend("U1")
    assert answer.degraded is None and len(answer.items) == 10


@pytest.mark.timeout(900)
@pytest.mark.skipif(not (DATA_DIR / "online-retail").is_dir(), reason="team data folder absent")
def test_train_on_online_retail_through_the_queue_serves_real_products(
    redis_url: str, tmp_path: Path
) -> None:
    # A stack of its own (Redis database 2): the shared one keeps serving synthetic users.
    with (
        running_stack(redis_url, 2, tmp_path, train=False) as stack,
        RecsysClient(stack.gateway_url) as api,
    ):
        body = {"dataset": "online-retail", "params": {"tune_budget_seconds": 30}}
        job = api.train(TrainRequest.model_validate(body))
        status = wait_for_job(stack.gateway_url, job.job_id, timeout=800)
        assert status.state == "SUCCESS", status.error
        assert status.promoted, status.reason
        assert status.model_version is not None
        wait_for_version(stack.gateway_url, status.model_version, user="17850")
        items = api.recommend("17850").items
        assert len(items) == 10
        # real StockCodes with their real descriptions and median prices
        assert all(item.title and item.title != item.product for item in items)
        assert all(item.price is not None and item.price > 0 for item in items)
        models = api.models()
        mine = next(v for v in models.versions if v.version == status.model_version)
        assert mine.dataset == "online-retail"
        assert mine.metrics["ndcg@10"] > mine.metrics["popularity_ndcg@10"]
        # the worker chose the recipe on validation splits and the version says how
        detail = api.model(status.model_version).model_dump(mode="json")
        tuning = detail["tuning"]
        assert tuning["trials"] and tuning["decision"] in ("two_stage", "stage_one")
        # the knobs the request left unset were searched: the trials tried other recipes, not
        # the defaults over and over (as when the queue's job wrote every default out)
        tried = {
            orjson.dumps(t["params"], option=orjson.OPT_SORT_KEYS)
            for t in tuning["trials"]
            if t["stage"] == "stage_one"
        }
        assert len(tried) > 1, tuning["trials"]
        assert detail["params"]["request"] == body  # kept as sent: a retrain replays it
        assert {"two_stage", "stage_one", "popularity"} <= tuning["validation_ndcg"].keys()
        assert detail["params"]["recipe"]["tune_budget_seconds"] == 30


def test_path_outside_the_data_root_is_refused(api: RecsysClient) -> None:
    request = TrainRequest(
        dataset="csv", data_path="/etc/passwd", csv=CsvOptions(user_col="a", item_col="b")
    )
    # Refused at the gateway, before anything is queued: 422 naming the field.
    with pytest.raises(InvalidRequestError) as refused:
        api.train(request)
    detail = refused.value.detail
    assert isinstance(detail, list)
    assert detail[0]["loc"] == ["body", "data_path"]
    assert "outside the data folder" in detail[0]["msg"]
