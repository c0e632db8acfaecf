"""The Models page through AppTest: dead gateway, a scripted one, and the live stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import SMALL_TRAIN, wait_for_job, wait_for_version
from tests.ui.conftest import FakeGateway, fake_gateway, reply
from ui.views.models import ACTIVATE_KEY, CANCEL_KEY, CHOICE_KEY, CONFIRM_KEY, CURRENT_MARK
from ui.views.recommendations import USER_KEY

APP = Path(__file__).resolve().parents[2] / "ui" / "app.py"
MODELS_PAGE = "app_pages/models.py"  # relative to APP, as AppTest.switch_page wants it
RECOMMENDATIONS_PAGE = "app_pages/recommendations.py"


def _open_models_page(timeout: float = 30) -> AppTest:
    # The entry point first: st.navigation registers the pages switch_page resolves against.
    at = AppTest.from_file(APP, default_timeout=timeout).run()
    return at.switch_page(MODELS_PAGE).run()


def _table_rows(at: AppTest) -> list[dict[str, Any]]:
    assert len(at.table) == 1, len(at.table)
    return [{str(k): v for k, v in row.items()} for row in at.table[0].value.to_dict("records")]


def _current_in_table(at: AppTest) -> list[int]:
    return [int(r["version"]) for r in _table_rows(at) if r["current"] == CURRENT_MARK]


def test_gateway_down_shows_banner(monkeypatch: pytest.MonkeyPatch, closed_port_url: str) -> None:
    monkeypatch.setenv("UI_GATEWAY_URL", closed_port_url)

    at = _open_models_page()

    assert not at.exception
    assert [t.value for t in at.title] == ["Models"]
    banners = [e.value for e in at.error]
    assert any(f"gateway at {closed_port_url} is not reachable" in b for b in banners), banners
    assert not at.table
    assert not at.button


_VERSIONS = [
    {
        "version": v,
        "created_at": f"2024-05-0{v}T10:00:00Z",
        "dataset": "synthetic",
        "metrics": {"ndcg@10": 0.2 + v / 100, "popularity_ndcg@10": 0.1, "ranker_auc": 0.8},
    }
    for v in (1, 2)
]


@pytest.fixture
def registry_gateway() -> Iterator[tuple[str, FakeGateway]]:
    """A gateway serving version 2 whose version 1 was deleted meanwhile (activate: 404)."""
    gateway = FakeGateway(
        routes={("GET", "/models"): reply({"current": 2, "versions": _VERSIONS})},
        default=reply({"detail": "no model loaded yet"}, 503),
    )
    gateway.routes[("POST", "/models/1/activate")] = reply(
        {"detail": "model version 1 does not exist"}, 404
    )
    with fake_gateway(gateway) as url:
        yield url, gateway


def test_activation_asks_first_and_shows_4xx(
    monkeypatch: pytest.MonkeyPatch, registry_gateway: tuple[str, FakeGateway]
) -> None:
    url, gateway = registry_gateway
    monkeypatch.setenv("UI_GATEWAY_URL", url)
    at = _open_models_page()

    assert not at.exception
    assert [r["version"] for r in _table_rows(at)] == [2, 1]  # newest first
    assert _current_in_table(at) == [2]
    assert _table_rows(at)[0]["NDCG@10"] == "0.220"
    assert len(at.get("vega_lite_chart")) == 1
    assert at.selectbox(key=CHOICE_KEY).value == 1  # the current version is not offered

    # Cancel: nothing is sent.
    at.button(key=ACTIVATE_KEY).click().run()
    assert any("Serve version 1 instead of version 2" in w.value for w in at.warning)
    assert at.button(key=CONFIRM_KEY).label == "Confirm: serve version 1"
    at.button(key=CANCEL_KEY).click().run()
    assert CONFIRM_KEY not in [b.key for b in at.button]
    assert gateway.paths("POST") == []

    # Confirm: the gateway's 404 becomes a banner.
    at.button(key=ACTIVATE_KEY).click().run()
    at.button(key=CONFIRM_KEY).click().run()

    assert not at.exception
    assert gateway.paths("POST") == ["/models/1/activate"]
    errors = [e.value for e in at.error]
    assert errors == ["Could not activate version 1: HTTP 404: model version 1 does not exist"]
    assert CONFIRM_KEY not in [b.key for b in at.button]


def test_picked_user_survives_a_visit_to_models(
    monkeypatch: pytest.MonkeyPatch, registry_gateway: tuple[str, FakeGateway]
) -> None:
    url, _ = registry_gateway
    monkeypatch.setenv("UI_GATEWAY_URL", url)
    at = AppTest.from_file(APP, default_timeout=30).run()
    at.text_input(key=USER_KEY).input("U7").run()

    at.switch_page(MODELS_PAGE).run()
    assert not at.text_input  # the sidebar picker belongs to the recommendations page
    at.switch_page(RECOMMENDATIONS_PAGE).run()

    assert not at.exception
    assert at.text_input(key=USER_KEY).value == "U7"


def _models(gateway_url: str) -> dict[str, Any]:
    response = httpx.get(f"{gateway_url}/models", timeout=10)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_list_and_activate_against_live_gateway(
    monkeypatch: pytest.MonkeyPatch, live_gateway_url: str
) -> None:
    monkeypatch.setenv("UI_GATEWAY_URL", live_gateway_url)
    monkeypatch.setenv("UI_POLL_SECONDS", "0.5")
    original = _models(live_gateway_url)["current"]
    assert original is not None
    try:
        if len(_models(live_gateway_url)["versions"]) < 2:
            job = httpx.post(f"{live_gateway_url}/train", json=SMALL_TRAIN, timeout=10).json()
            assert wait_for_job(live_gateway_url, job["job_id"]).state == "SUCCESS"
        models = _models(live_gateway_url)
        before = models["current"]  # a promoted training run may have moved it
        versions = sorted(m["version"] for m in models["versions"])
        target = max(v for v in versions if v != before)

        at = _open_models_page(timeout=60)

        assert not at.exception
        assert not at.error, [e.value for e in at.error]
        assert sorted(int(r["version"]) for r in _table_rows(at)) == versions
        assert _current_in_table(at) == [before]

        at.selectbox(key=CHOICE_KEY).select(target).run()
        at.button(key=ACTIVATE_KEY).click().run()
        assert at.button(key=CONFIRM_KEY).label == f"Confirm: serve version {target}"
        assert _models(live_gateway_url)["current"] == before  # nothing happens before confirming
        at.button(key=CONFIRM_KEY).click().run()

        assert not at.exception
        assert not at.error, [e.value for e in at.error]
        assert _models(live_gateway_url)["current"] == target
        assert [s.value for s in at.success] == [f"Version {target} is now served."]
        assert _current_in_table(at) == [target]
    finally:
        # Later tests expect the model the session started with.
        restored = httpx.post(f"{live_gateway_url}/models/{original}/activate", timeout=10)
        restored.raise_for_status()
        wait_for_version(live_gateway_url, original)
