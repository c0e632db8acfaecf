"""The Streamlit page, driven headlessly through AppTest against a dead and a live gateway."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.ui.conftest import FakeGateway, card_products, fake_gateway, reply

APP = Path(__file__).resolve().parents[2] / "ui" / "app.py"
# Synthetic training takes a while on a slow CI box; the page polls until it is done.
TRAIN_TIMEOUT_SECONDS = 480


@pytest.fixture
def no_model_gateway_url() -> Iterator[str]:
    # Up, but no model yet: the registry is empty and everything else is FastAPI's 503 body.
    gateway = FakeGateway(
        routes={("GET", "/models"): reply({"current": None, "versions": []})},
        default=reply({"detail": "no model loaded yet"}, 503),
    )
    with fake_gateway(gateway) as url:
        yield url


def _page_texts(at: AppTest) -> list[str]:
    elements = [*at.title, *at.subheader, *at.caption, *at.markdown, *at.success, *at.error]
    return [str(element.value) for element in elements]


def _ranked_by_version(at: AppTest) -> int:
    """The X-Model-Version of the shown recommendations, as the page prints it."""
    found = [m for text in _page_texts(at) if (m := re.search(r"model version (\d+)", text))]
    ranked = [int(m.group(1)) for m in found if m.string.startswith("Ranked by")]
    assert len(ranked) == 1, _page_texts(at)
    return ranked[0]


def test_gateway_down_shows_banner(monkeypatch: pytest.MonkeyPatch, closed_port_url: str) -> None:
    monkeypatch.setenv("UI_GATEWAY_URL", closed_port_url)

    at = AppTest.from_file(APP, default_timeout=30).run()

    assert not at.exception
    banners = [e.value for e in at.error]
    assert any(f"gateway at {closed_port_url} is not reachable" in b for b in banners), banners
    assert any("make run" in b for b in banners), banners
    assert not card_products(at)


@pytest.mark.parametrize(
    ("page", "title"),
    [
        ("app_pages/training.py", "Training"),
        ("app_pages/models.py", "Models"),
        ("app_pages/evaluation.py", "Evaluation"),
        ("app_pages/live.py", "Live"),
        ("app_pages/experiments.py", "Experiments"),
    ],
)
def test_every_page_says_the_gateway_is_down(
    monkeypatch: pytest.MonkeyPatch, closed_port_url: str, page: str, title: str
) -> None:
    monkeypatch.setenv("UI_GATEWAY_URL", closed_port_url)

    at = AppTest.from_file(APP, default_timeout=30).run().switch_page(page).run()

    assert not at.exception
    assert [t.value for t in at.title] == [title]
    banners = [e.value for e in at.error]
    assert len(banners) == 1, banners
    assert f"gateway at {closed_port_url} is not reachable" in banners[0]
    assert "run `make run`" in banners[0]


def test_no_model_yet_shows_info(
    monkeypatch: pytest.MonkeyPatch, no_model_gateway_url: str
) -> None:
    monkeypatch.setenv("UI_GATEWAY_URL", no_model_gateway_url)

    at = AppTest.from_file(APP, default_timeout=30).run()

    assert not at.exception
    assert not at.error
    assert any("No model yet" in i.value for i in at.info), [i.value for i in at.info]
    # The first model can also be trained from here.
    assert [b.label for b in at.button] == ["Retrain"]


@pytest.mark.integration
@pytest.mark.timeout(TRAIN_TIMEOUT_SECONDS + 120)
def test_recommendations_and_retrain_against_live_gateway(
    monkeypatch: pytest.MonkeyPatch, live_gateway_url: str
) -> None:
    monkeypatch.setenv("UI_GATEWAY_URL", live_gateway_url)
    monkeypatch.setenv("UI_POLL_SECONDS", "0.5")

    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.text_input(key="user").input("U1").run()

    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    products = card_products(at)
    assert len(products) >= 10, products
    assert all(re.fullmatch(r"P\w+", p) for p in products), products
    before = _ranked_by_version(at)
    assert f"Serving model version {before}" in _page_texts(at)

    retrain = next(b for b in at.button if b.label == "Retrain")
    # One run covers the POST, the polling loop and the page's own rerun once the job is done.
    retrain.click().run(timeout=TRAIN_TIMEOUT_SECONDS)

    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    after = _ranked_by_version(at)
    assert after != before
    assert f"Model version {after} is now served." in _page_texts(at)
    assert f"Serving model version {after}" in _page_texts(at)
    assert len(card_products(at)) >= 10
