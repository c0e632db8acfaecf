"""A/B experiments against real processes: bad experiments refused with what is wrong; 10,000
users split by the shares and kept in their arm; each answer served by its arm's version and
counted exactly; a broken arm stopped by its guardrail with traffic back on control; stop and
promote. And the exploration slot (on in this stack) feeding an off-policy estimate."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from services.launcher.stack import Stack
from tests.conftest import SMALL_TRAIN, running_stack, wait_for_job, wait_for_version

pytestmark = pytest.mark.integration
DB = 8


@pytest.fixture(scope="module")
def xstack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of its own (experiments pin versions for everyone), with two model versions."""
    env = {"GATEWAY_EXPERIMENT_POLL_SECONDS": "0.5", "GATEWAY_EXPLORE_RATE": "0.3"}
    with running_stack(redis_url, DB, tmp_path_factory.mktemp("xstack"), env=env) as s:
        job = httpx.post(f"{s.gateway_url}/train", json=SMALL_TRAIN, timeout=10).json()
        status = wait_for_job(s.gateway_url, job["job_id"])
        assert status.state == "SUCCESS" and status.model_version is not None, status.error
        wait_for_version(s.gateway_url, status.model_version)
        yield s


def _versions(stack: Stack) -> tuple[int, int]:
    """(current, an older one)."""
    models = httpx.get(f"{stack.gateway_url}/models", timeout=10).json()
    current = int(models["current"])
    older = max(int(m["version"]) for m in models["versions"] if m["version"] != current)
    return current, older


def _create(stack: Stack, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{stack.gateway_url}/experiments", json=body, timeout=90)


def _arms(control: int, treatment: int, share: float = 0.5) -> list[dict[str, Any]]:
    return [
        {"name": "control", "version": control, "share": 1 - share},
        {"name": "treatment", "version": treatment, "share": share},
    ]


def _report(stack: Stack, name: str) -> dict[str, Any]:
    r = httpx.get(f"{stack.gateway_url}/experiments/{name}", timeout=10)
    assert r.status_code == 200, r.text
    got: dict[str, Any] = r.json()
    return got


def _recommend(stack: Stack, user: str, rid: str | None = None) -> httpx.Response:
    headers = {"X-Request-ID": rid} if rid else {}
    r = httpx.get(f"{stack.gateway_url}/recommend", params={"user": user, "k": 5},
                  headers=headers, timeout=10)  # fmt: skip
    assert r.status_code == 200, r.text
    return r


def _stop(stack: Stack, name: str) -> httpx.Response:
    return httpx.post(f"{stack.gateway_url}/experiments/{name}/stop", timeout=10)


def test_bad_experiments_are_refused_with_a_clear_body(xstack: Stack) -> None:
    current, older = _versions(xstack)
    short = [{"name": "a", "version": current, "share": 0.5},
             {"name": "b", "version": older, "share": 0.4}]  # fmt: skip
    twice = [{"name": "a", "version": current, "share": 0.5}] * 2
    cases = [
        ({"name": "bad", "arms": _arms(current, 999)}, 422, "version 999 does not exist"),
        ({"name": "bad", "arms": short}, 422, "sum to 0.9"),
        ({"name": "bad", "arms": twice}, 422, "repeat"),
        ({"name": "bad/name", "arms": _arms(current, older)}, 422, "name"),
        ({"name": "bad", "arms": _arms(current, older)[:1]}, 422, "at least 2"),
    ]
    for body, status, says in cases:
        r = _create(xstack, body)
        assert r.status_code == status and says in r.text, (body, r.text)
    assert _create(xstack, {"name": "first", "arms": _arms(current, older)}).status_code == 201
    try:
        taken = _create(xstack, {"name": "first", "arms": _arms(current, older)})
        assert taken.status_code == 409 and "exists" in taken.json()["detail"]
        busy = _create(xstack, {"name": "second", "arms": _arms(current, older)})
        assert busy.status_code == 409 and "'first' is running" in busy.json()["detail"]
        missing = httpx.get(f"{xstack.gateway_url}/experiments/nope", timeout=10)
        assert missing.status_code == 404 and "nope" in missing.json()["detail"]
    finally:
        stopped = _stop(xstack, "first").json()
        assert (stopped["status"], stopped["ended_by"]) == ("stopped", "stop")


def test_users_split_by_the_shares_and_each_answer_is_its_arms_version(xstack: Stack) -> None:
    current, older = _versions(xstack)
    arms = _arms(current, older, share=0.3)
    assert _create(xstack, {"name": "split", "arms": arms}).status_code == 201
    try:
        users = [f"visitor-{n}" for n in range(10_000)]
        url = f"{xstack.gateway_url}/experiments/split/assignments"

        def assigned() -> dict[str, str]:
            arms: dict[str, str] = {}
            for n in range(0, len(users), 1000):  # 1,000 per call
                r = httpx.post(url, json={"users": users[n : n + 1000]}, timeout=30)
                assert r.status_code == 200, r.text
                arms |= r.json()["arms"]
            return arms

        first, again = assigned(), assigned()
        assert first == again  # a user's arm never changes during the experiment
        split = Counter(first.values())
        print(f"10,000 users: {dict(split)} for shares 0.7 / 0.3")
        assert abs(split["treatment"] / 10_000 - 0.3) <= 0.02
        assert abs(split["control"] / 10_000 - 0.7) <= 0.02
        version = {"control": current, "treatment": older}
        for user in users[:40]:  # answers agree with the assignment, end to end
            for _ in range(2):
                r = _recommend(xstack, user)
                assert r.headers["X-Experiment-Arm"] == f"split/{first[user]}"
                assert int(r.headers["X-Model-Version"]) == version[first[user]]
    finally:
        _stop(xstack, "split")
    r = _recommend(xstack, "visitor-1")
    assert "X-Experiment-Arm" not in r.headers and int(r.headers["X-Model-Version"]) == current


def test_counts_per_arm_equal_what_was_sent(xstack: Stack) -> None:
    current, older = _versions(xstack)
    assert _create(xstack, {"name": "counts", "arms": _arms(current, older)}).status_code == 201
    try:
        lists: Counter[str] = Counter()
        shown: Counter[str] = Counter()
        clicks: Counter[str] = Counter()
        clicked_lists: Counter[str] = Counter()
        purchases: Counter[str] = Counter()
        revenue: dict[str, float] = {"control": 0.0, "treatment": 0.0}
        for n in range(60):
            user, rid = f"counted-{n}", f"counts-{n}"
            r = _recommend(xstack, user, rid)
            arm = r.headers["X-Experiment-Arm"].split("/")[1]
            items = r.json()
            lists[arm] += 1
            shown[arm] += len(items)
            if n % 3 == 0:  # two clicks on the same list: one list clicked, two clicks
                for item in items[:2]:
                    body = {"user": user, "product": item["product"], "type": "click",
                            "request_id": rid}  # fmt: skip
                    a = httpx.post(f"{xstack.gateway_url}/events", json=body, timeout=10)
                    assert a.json()["attribution"]["arm"] == f"counts/{arm}"
                    clicks[arm] += 1
                clicked_lists[arm] += 1
            if n % 10 == 0:  # a purchase without request_id: the latest list showing it
                body = {"user": user, "product": items[0]["product"], "type": "purchase",
                        "quantity": 2, "price": 4.5}  # fmt: skip
                a = httpx.post(f"{xstack.gateway_url}/events", json=body, timeout=10)
                assert a.json()["attribution"]["how"] == "latest_list"
                purchases[arm] += 1
                revenue[arm] += 9.0
        report = _report(xstack, "counts")
        for got in report["arms"]:
            arm = got["name"]
            assert (got["lists"], got["items_shown"]) == (lists[arm], shown[arm]), got
            assert (got["clicks"], got["lists_clicked"]) == (clicks[arm], clicked_lists[arm])
            assert (got["purchases"], got["revenue"]) == (purchases[arm], revenue[arm])
            assert got["primary"] == pytest.approx(clicked_lists[arm] / lists[arm])
        treated = report["arms"][1]
        d = treated["vs_control"]
        assert d["low"] <= d["estimate"] <= d["high"]
        assert "collecting" in report["verdict"]  # 60 lists: below the 200 a verdict waits for
    finally:
        _stop(xstack, "counts")


def test_a_broken_arm_trips_its_guardrail_and_traffic_returns_to_control(xstack: Stack) -> None:
    current, older = _versions(xstack)
    guard = {"max_degraded_rate": 0.2, "min_lists": 20}
    body = {"name": "broken", "arms": _arms(current, older), "guardrails": guard}
    assert _create(xstack, body).status_code == 201
    xstack.stop_process("ranker")  # every answer degraded: the treatment arm breaches
    try:
        n, stopped_at = 0, None
        start = time.monotonic()
        while time.monotonic() - start < 60:
            r = _recommend(xstack, f"broken-{n}")
            n += 1
            if "X-Experiment-Arm" not in r.headers:
                stopped_at = time.monotonic()
                assert int(r.headers["X-Model-Version"]) == current  # the control's version
                break
        assert stopped_at is not None, "the guardrail never stopped the experiment"
        report = _report(xstack, "broken")
        exp = report["experiment"]
        assert exp["status"] == "stopped" and "max_degraded_rate" in exp["reason"]
        assert exp["ended_by"] == "guardrail"
        treated = report["arms"][1]
        assert treated["lists"] >= 20 and treated["degraded"] / treated["lists"] > 0.2
        late = time.time() - exp["ended"]
        print(f"guardrail: stopped after {n} requests; first answer outside the arm "
              f"{late:.2f} s after the stop was recorded: {exp['reason']}")  # fmt: skip
        metrics = httpx.get(f"{xstack.gateway_url}/metrics", timeout=10).text
        assert 'recsys_experiment_ends_total{cause="guardrail",experiment="broken"} 1.0' in metrics
    finally:
        xstack.restart("ranker")
    for user in (f"broken-{i}" for i in range(20)):  # nobody is bucketed any more
        assert "X-Experiment-Arm" not in _recommend(xstack, user).headers
    start = time.monotonic()  # the ranker back, and the gateway using it again
    while "X-Degraded" in _recommend(xstack, "broken-0").headers:
        assert time.monotonic() - start < 60, "the ranker did not come back"
        time.sleep(0.2)


def test_stop_and_promote(xstack: Stack) -> None:
    current, older = _versions(xstack)
    assert _create(xstack, {"name": "promote", "arms": _arms(current, older)}).status_code == 201
    url = f"{xstack.gateway_url}/experiments/promote/promote"
    no_winner = httpx.post(url, timeout=10)
    assert no_winner.status_code == 409 and "no arm wins yet" in no_winner.json()["detail"]
    unknown = httpx.post(url, json={"arm": "nope"}, timeout=10)
    assert unknown.status_code == 422 and "nope" in unknown.text
    done = httpx.post(url, json={"arm": "treatment"}, timeout=30)
    assert done.status_code == 200 and done.json()["status"] == "promoted", done.text
    assert done.json()["ended_by"] == "promote"
    assert httpx.get(f"{xstack.gateway_url}/models", timeout=10).json()["current"] == older
    wait_for_version(xstack.gateway_url, older)
    again = httpx.post(url, json={"arm": "treatment"}, timeout=10)
    assert again.status_code == 409 and "promoted" in again.json()["detail"]
    assert _stop(xstack, "promote").json()["status"] == "promoted"  # ended: nothing changes
    listed = httpx.get(f"{xstack.gateway_url}/experiments", timeout=10).json()
    assert {e["name"]: e["status"] for e in listed}["promote"] == "promoted"
    httpx.post(f"{xstack.gateway_url}/models/{current}/activate", timeout=10)


def test_exploration_draws_are_logged_and_feed_an_estimate(xstack: Stack) -> None:
    current, _ = _versions(xstack)
    explored: list[tuple[str, str, str]] = []
    for n in range(120):
        user, rid = f"explorer-{n % 40}", f"explore-{n}"
        items = _recommend(xstack, user, rid).json()
        assert all(i["reason"] != "explore" for i in items[:-1])  # only the last place
        if items[-1]["reason"] == "explore":
            explored.append((user, rid, items[-1]["product"]))
    print(f"exploration slot: {len(explored)} of 120 answers (rate 0.3)")
    assert 15 <= len(explored) <= 60  # 36 expected; a binomial's spread is about 5
    clicked = explored[::2]
    for user, rid, product in clicked:
        body = {"user": user, "product": product, "type": "click", "request_id": rid}
        a = httpx.post(f"{xstack.gateway_url}/events", json=body, timeout=10).json()
        assert a["attribution"]["explored"] is True and a["attribution"]["position"] == 5
    url = f"{xstack.gateway_url}/models/{current}/estimate"
    r = httpx.get(url, params={"m": 10, "draws": len(explored)}, timeout=120)
    assert r.status_code == 200, r.text
    got = r.json()
    print(f"estimate of version {current}: {got}")
    assert got["draws"] == len(explored)  # the latest draws: exactly this test's
    assert got["logged_click_rate"] == pytest.approx(len(clicked) / len(explored))
    assert 0 <= got["matches"] <= got["draws"] and got["clicks"] <= len(clicked)
    if got["enough_support"]:
        assert got["snips"] is not None and 0 <= got["snips"] <= 1
    else:
        assert got["snips"] is None and "too little support" in got["note"]
    missing = httpx.get(f"{xstack.gateway_url}/models/999/estimate", timeout=120)
    assert missing.status_code == 409 and "999" in missing.json()["detail"]
