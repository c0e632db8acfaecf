"""The Recommendations page through AppTest: cards, explanations, events, unknown users."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from streamlit.testing.v1 import AppTest

from tests.ui.conftest import FakeGateway, Reply, card_products, fake_gateway, reply
from ui.views.recommendations import EXAMPLE_KEY, UNKNOWN_USER, USER_KEY

APP = Path(__file__).resolve().parents[2] / "ui" / "app.py"

_MODELS = {
    "current": 3,
    "versions": [
        {
            "version": 3,
            "created_at": "2024-05-03T10:00:00Z",
            "dataset": "synthetic",
            "metrics": {"ndcg@10": 0.3, "popularity_ndcg@10": 0.15},
        }
    ],
}


def _item(product: str, rank: int, reason: str = "similar_to:P7") -> dict[str, object]:
    return {
        "product": product,
        "score": round(1 - rank / 100, 3),
        "price": 10.0 + rank,
        "age": 37.0,
        "title": f"Thing {product}",
        "category": "toys" if rank % 2 else "books",
        "reason": reason,
        "explanation": {
            "seed": "P7",
            "contributions": {"cand_score": 0.4, "item_pop_7d": -0.25, "price": 0.01},
            "bias": 0.1,
        },
    }


BEFORE = [f"P{i}" for i in range(1, 11)]
AFTER = ["P11", *BEFORE[:9]]  # the event brings P11 in at the top, P10 falls out


def _recommend(gateway: FakeGateway, raw: bytes) -> Reply:
    query = parse_qs(urlsplit(gateway.requests[-1][1]).query)
    user, k = query["user"][0], int(query["k"][0])
    if user == UNKNOWN_USER:
        return (
            200,
            [_item(f"P{i}", i, "popular") for i in range(1, k + 1)],
            {"X-Model-Version": "3"},
        )
    if user == "U9":  # the ranker was down: candidate order, no details
        items = [
            {"product": p, "score": 0.5, "price": None, "age": None, "reason": "similar_to:P7"}
            for p in BEFORE[:k]
        ]
        return 200, items, {"X-Model-Version": "3", "X-Degraded": "ranker"}
    if user == "U8":  # the gateway shed the request: popular items at once
        popular = [_item(f"P{i}", i, "popular") for i in range(1, k + 1)]
        return 200, popular, {"X-Model-Version": "3", "X-Degraded": "overload"}
    products = AFTER if gateway.state.get("events") else BEFORE
    return 200, [_item(p, r) for r, p in enumerate(products[:k], 1)], {"X-Model-Version": "3"}


def _accept_event(gateway: FakeGateway, raw: bytes) -> Reply:
    gateway.state["events"] = gateway.state.get("events", 0) + 1
    return 202, {"accepted": True, "id": "1-0"}


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGateway]:
    fake = FakeGateway(
        {
            ("GET", "/models"): reply(_MODELS),
            ("GET", "/recommend"): _recommend,
            ("POST", "/events"): _accept_event,
        }
    )
    with fake_gateway(fake) as url:
        monkeypatch.setenv("UI_GATEWAY_URL", url)
        yield fake


def _texts(at: AppTest) -> list[str]:
    return [str(e.value) for e in [*at.markdown, *at.caption]]


def test_cards_show_every_detail_and_an_explanation(gateway: FakeGateway) -> None:
    at = AppTest.from_file(APP, default_timeout=30).run()

    assert not at.exception
    assert card_products(at) == BEFORE
    texts = _texts(at)
    assert "**1. Thing P1** · `P1`" in texts
    assert "toys · 11.00 · score 0.990 · similar to P7" in texts
    assert "Ranked by model version 3" in texts
    # The page asks for explanations, one expander per card.
    query = parse_qs(urlsplit(gateway.paths("GET")[-1]).query)
    assert query["explain"] == ["true"] and query["user"] == ["U1"]
    assert [e.label for e in at.expander] == ["Why this item?"] * 10
    assert "Proposed because U1 had **P7**." in texts
    contributions = at.table[0].value.to_dict("records")
    # Strongest first, either sign.
    assert contributions[:2] == [
        {"feature": "cand_score", "contribution": "+0.400"},
        {"feature": "item_pop_7d", "contribution": "-0.250"},
    ]
    labels = {b.label for b in at.button}
    assert {":material/visibility: View", ":material/ads_click: Click"} <= labels


def test_an_event_is_sent_and_the_change_shown(gateway: FakeGateway) -> None:
    at = AppTest.from_file(APP, default_timeout=30).run()

    at.button(key="click-P3").click().run()

    assert not at.exception
    posted = [body for method, path, body in gateway.requests if path == "/events"]
    assert posted == [{"user": "U1", "product": "P3", "type": "click"}]
    assert card_products(at) == AFTER
    success = [s.value for s in at.success]
    assert success == [
        "Sent a **click** of `P3` for U1. The recommendations changed: "
        "1 new (P11); 1 dropped (P10); 9 moved."
    ]
    assert "**1. Thing P11** · `P11` :green-badge[new]" in _texts(at)

    at.run()  # the report is shown once, not on every rerun
    assert not at.success


def test_a_failed_event_says_why(gateway: FakeGateway) -> None:
    gateway.routes[("POST", "/events")] = reply({"detail": "event store unavailable"}, 503)
    at = AppTest.from_file(APP, default_timeout=30).run()

    at.button(key="purchase-P2").click().run()

    assert not at.exception
    errors = [e.value for e in at.error]
    assert errors == ["Could not send the purchase of P2: HTTP 503: event store unavailable"]
    assert card_products(at) == BEFORE


def test_unknown_user_from_the_picker_gets_cold_start(gateway: FakeGateway) -> None:
    at = AppTest.from_file(APP, default_timeout=30).run()

    at.selectbox(key=EXAMPLE_KEY).select(UNKNOWN_USER).run()

    assert not at.exception
    assert at.text_input(key=USER_KEY).value == UNKNOWN_USER
    assert f"Top 10 for {UNKNOWN_USER}" in [s.value for s in at.subheader]
    assert f"No history for {UNKNOWN_USER}: these are cold-start picks (popular items)." in (
        _texts(at)
    )
    assert len(card_products(at)) == 10
    assert any(re.search(r"· popular overall$", t) for t in _texts(at))


def test_typed_user_and_k(gateway: FakeGateway) -> None:
    at = AppTest.from_file(APP, default_timeout=30).run()

    at.text_input(key=USER_KEY).input("U4").run()
    at.slider(key="k").set_value(5).run()

    assert not at.exception
    assert card_products(at) == BEFORE[:5]
    query = parse_qs(urlsplit(gateway.paths("GET")[-1]).query)
    assert query["user"] == ["U4"] and query["k"] == ["5"]


def test_degraded_answer_is_flagged(gateway: FakeGateway) -> None:
    at = AppTest.from_file(APP, default_timeout=30).run()

    at.text_input(key=USER_KEY).input("U9").run()

    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 1 and "the ranker stage did not answer" in warnings[0]
    assert "**1. P1** · `P1`" in _texts(at)  # no title: the product id stands in
    assert "No explanation: the ranker did not score this answer." in _texts(at)


def test_shed_answer_says_the_service_was_busy(gateway: FakeGateway) -> None:
    at = AppTest.from_file(APP, default_timeout=30).run()

    at.text_input(key=USER_KEY).input("U8").run()

    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 1 and "too busy" in warnings[0] and "stage" not in warnings[0]
