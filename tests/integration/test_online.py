"""The online loop against real processes: every answer is logged under its X-Request-ID, events
are attributed to the list that showed the product, and GET /online/metrics counts exactly
what was sent."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.launcher.stack import Stack
from shared.client import InvalidRequestError, RecsysClient
from shared.schemas.serving import EventIn
from shared.served import Attribution, VersionMetrics

pytestmark = pytest.mark.integration


def _metrics(api: RecsysClient, version: int) -> VersionMetrics:
    (got,) = api.online_metrics(2, version=version).versions
    return got


def _listed(stack: Stack, user: str, k: int, request_id: str) -> list[str]:
    """The products of `user`'s answer under `request_id`. Raw httpx: the client neither sends
    nor reports X-Request-ID."""
    r = httpx.get(
        f"{stack.gateway_url}/recommend",
        params={"user": user, "k": k},
        headers={"X-Request-ID": request_id},
        timeout=10,
    )
    assert r.status_code == 200 and r.headers["X-Request-ID"] == request_id
    return [str(i["product"]) for i in r.json()]


def _attribution(api: RecsysClient, **event: Any) -> Attribution:
    attribution = api.send_event(EventIn(**event)).attribution
    assert attribution is not None
    return attribution


def test_served_lists_and_attributed_events_are_counted_exactly(
    stack: Stack, api: RecsysClient
) -> None:
    version = api.recommend("U1").version
    assert version is not None
    before = _metrics(api, version)
    answers = [_listed(stack, f"online-{n}", 5, f"online-test-{n}") for n in range(20)]
    # ten clicks naming their list, on the 2nd item
    for n in range(10):
        a = _attribution(api, user=f"online-{n}", product=answers[n][1], type="click",
                         request_id=f"online-test-{n}")  # fmt: skip
        assert (a.how, a.request_id, a.position) == ("request_id", f"online-test-{n}", 2)
    # three add-to-carts without one: the latest list that showed the product to the user
    for n in range(10, 13):
        a = _attribution(api, user=f"online-{n}", product=answers[n][0], type="add_to_cart")
        assert (a.how, a.request_id, a.position) == ("latest_list", f"online-test-{n}", 1)
    # two purchases with quantity and price: revenue
    for n in (13, 14):
        a = _attribution(api, user=f"online-{n}", product=answers[n][2], type="purchase",
                         request_id=f"online-test-{n}", quantity=3, price=10.0)  # fmt: skip
        assert a.version == version
    after = _metrics(api, version)
    assert after.lists - before.lists == 20
    assert after.items_shown - before.items_shown == sum(len(a) for a in answers)
    assert after.clicks - before.clicks == 10
    assert after.add_to_cart - before.add_to_cart == 3
    assert after.purchases - before.purchases == 2
    assert round(after.revenue - before.revenue, 6) == 60.0
    assert after.ctr_by_position[2] > 0
    # raw httpx: /metrics is Prometheus text, not part of the client
    metrics = httpx.get(f"{stack.gateway_url}/metrics", timeout=10).text
    line = f'recsys_attributed_events_total{{type="click",version="{version}"}}'
    assert any(m.startswith(line) and float(m.split()[-1]) >= 10 for m in metrics.splitlines())


def test_bad_attributions(stack: Stack, api: RecsysClient) -> None:
    product = _listed(stack, "owner", 3, "owned-list")[0]
    # a list of another user: refused, saying why
    with pytest.raises(InvalidRequestError) as other:
        api.send_event(
            EventIn(user="intruder", product=product, type="click", request_id="owned-list")
        )
    assert "another user" in str(other.value.detail)
    # a list that never existed: kept, attributed by the fallback rule, and the answer says so
    a = _attribution(api, user="owner", product=product, type="click", request_id="never-was")
    assert a.how == "latest_list" and a.request_id == "owned-list" and "never-was" in (a.note or "")
    # raw httpx: the client's EventIn refuses each of these before sending it
    for bad in ({"request_id": "a b"}, {"position": 0}, {"quantity": 0}, {"price": -1}):
        body = {"user": "owner", "product": product, "type": "purchase", **bad}
        r = httpx.post(f"{stack.gateway_url}/events", json=body, timeout=10)
        assert r.status_code == 422
