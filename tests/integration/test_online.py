"""The online loop against real processes: every answer is logged under its X-Request-ID, events
are attributed to the list that showed the product, and GET /online/metrics counts exactly
what was sent."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.launcher.stack import Stack

pytestmark = pytest.mark.integration


def _metrics(stack: Stack, version: int) -> dict[str, Any]:
    r = httpx.get(
        f"{stack.gateway_url}/online/metrics",
        params={"window_hours": 2, "version": version},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    (got,) = r.json()["versions"]
    return dict(got)


def _event(stack: Stack, **body: Any) -> httpx.Response:
    return httpx.post(f"{stack.gateway_url}/events", json=body, timeout=10)


def test_served_lists_and_attributed_events_are_counted_exactly(stack: Stack) -> None:
    first = httpx.get(f"{stack.gateway_url}/recommend", params={"user": "U1"}, timeout=10)
    version = int(first.headers["X-Model-Version"])
    before = _metrics(stack, version)
    answers = []
    for n in range(20):
        r = httpx.get(
            f"{stack.gateway_url}/recommend",
            params={"user": f"online-{n}", "k": 5},
            headers={"X-Request-ID": f"online-test-{n}"},
            timeout=10,
        )
        assert r.status_code == 200 and r.headers["X-Request-ID"] == f"online-test-{n}"
        answers.append(r.json())
    # ten clicks naming their list, on the 2nd item
    for n in range(10):
        product = answers[n][1]["product"]
        r = _event(stack, user=f"online-{n}", product=product, type="click",
                   request_id=f"online-test-{n}")  # fmt: skip
        assert r.status_code == 202, r.text
        a = r.json()["attribution"]
        assert (a["how"], a["request_id"], a["position"]) == ("request_id", f"online-test-{n}", 2)
    # three add-to-carts without one: the latest list that showed the product to the user
    for n in range(10, 13):
        r = _event(stack, user=f"online-{n}", product=answers[n][0]["product"], type="add_to_cart")
        a = r.json()["attribution"]
        assert (a["how"], a["request_id"], a["position"]) == ("latest_list", f"online-test-{n}", 1)
    # two purchases with quantity and price: revenue
    for n in (13, 14):
        r = _event(stack, user=f"online-{n}", product=answers[n][2]["product"], type="purchase",
                   request_id=f"online-test-{n}", quantity=3, price=10.0)  # fmt: skip
        assert r.json()["attribution"]["version"] == version
    after = _metrics(stack, version)
    assert after["lists"] - before["lists"] == 20
    assert after["items_shown"] - before["items_shown"] == sum(len(a) for a in answers)
    assert after["clicks"] - before["clicks"] == 10
    assert after["add_to_cart"] - before["add_to_cart"] == 3
    assert after["purchases"] - before["purchases"] == 2
    assert round(after["revenue"] - before["revenue"], 6) == 60.0
    assert after["ctr_by_position"]["2"] > 0
    metrics = httpx.get(f"{stack.gateway_url}/metrics", timeout=10).text
    line = f'recsys_attributed_events_total{{type="click",version="{version}"}}'
    assert any(m.startswith(line) and float(m.split()[-1]) >= 10 for m in metrics.splitlines())


def test_bad_attributions(stack: Stack) -> None:
    r = httpx.get(
        f"{stack.gateway_url}/recommend",
        params={"user": "owner", "k": 3},
        headers={"X-Request-ID": "owned-list"},
        timeout=10,
    )
    product = r.json()[0]["product"]
    # a list of another user: refused, saying why
    other = _event(stack, user="intruder", product=product, type="click", request_id="owned-list")
    assert other.status_code == 422 and "another user" in other.text
    # a list that never existed: kept, attributed by the fallback rule, and the answer says so
    kept = _event(stack, user="owner", product=product, type="click", request_id="never-was")
    assert kept.status_code == 202
    a = kept.json()["attribution"]
    assert (
        a["how"] == "latest_list" and a["request_id"] == "owned-list" and "never-was" in a["note"]
    )
    for bad in ({"request_id": "a b"}, {"position": 0}, {"quantity": 0}, {"price": -1}):
        body = {"user": "owner", "product": product, "type": "purchase", **bad}
        assert _event(stack, **body).status_code == 422
