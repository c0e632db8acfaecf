"""The Models page through AppTest: dead gateway, a scripted one, and the live stack."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest

from tests.conftest import SMALL_TRAIN, wait_for_job, wait_for_version
from tests.ui.conftest import TUNING, FakeGateway, fake_gateway, model_detail, reply
from ui.views.models import (
    ACTIVATE_KEY,
    CANCEL_KEY,
    CHOICE_KEY,
    CONFIRM_KEY,
    CURRENT_MARK,
    TUNING_VERSION_KEY,
)
from ui.views.recommendations import USER_KEY
from ui.views.tuning import FINISHED_KEY

APP = Path(__file__).resolve().parents[2] / "ui" / "app.py"
MODELS_PAGE = "app_pages/models.py"  # relative to APP, as AppTest.switch_page wants it
RECOMMENDATIONS_PAGE = "app_pages/recommendations.py"


def _open_models_page(timeout: float = 30) -> AppTest:
    # The entry point first: st.navigation registers the pages switch_page resolves against.
    at = AppTest.from_file(APP, default_timeout=timeout).run()
    return at.switch_page(MODELS_PAGE).run()


def _table_rows(at: AppTest, column: str = "current") -> list[dict[str, Any]]:
    """The rows of the one table with `column` (by default the registry's)."""
    tables = [t.value for t in at.table if column in t.value.columns]
    assert len(tables) == 1, [list(t.value.columns) for t in at.table]
    return [{str(k): v for k, v in row.items()} for row in tables[0].to_dict("records")]


def _charts(at: AppTest) -> list[dict[str, Any]]:
    """The Vega-Lite specs on the page."""
    return [json.loads(chart.proto.spec) for chart in at.get("vega_lite_chart")]


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
    """A gateway serving version 2 whose version 1 was deleted meanwhile (activate: 404);
    version 2 chose its recipe by a search, version 1 was trained before training tuned."""
    gateway = FakeGateway(
        routes={
            ("GET", "/models"): reply({"current": 2, "versions": _VERSIONS}),
            ("GET", "/models/2"): reply(model_detail(2, current=True, tuning=TUNING)),
            ("GET", "/models/1"): reply(model_detail(1, current=False, tuning=None)),
        },
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
    assert len([c for c in _charts(at) if "layer" not in c]) == 1  # NDCG@10 by version
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


def test_tuning_section_explains_the_recipe(
    monkeypatch: pytest.MonkeyPatch, registry_gateway: tuple[str, FakeGateway]
) -> None:
    url, gateway = registry_gateway
    monkeypatch.setenv("UI_GATEWAY_URL", url)
    at = _open_models_page()

    assert not at.exception
    assert [s.value for s in at.subheader][-1] == "How this recipe was chosen"
    assert at.selectbox(key=TUNING_VERSION_KEY).value == 2  # opens on the current version
    assert "/models/2" in gateway.paths("GET")
    markdown = [str(m.value) for m in at.markdown]
    assert (
        "**Served pipeline:** two-stage: stage one's candidates reordered by the ranker  \n"
        "the ranker beats stage one alone on validation (0.3102 vs 0.2950)"
    ) in markdown
    assert {m.label: m.value for m in at.metric} == {
        "Trials": "5",
        "Best validation NDCG@10": "0.3102",
        "Search time": "42 s of 60 s",
    }
    assert [m.help for m in at.metric] == [
        "3 complete, 1 pruned, 1 failed",
        "Trial 3 (ranker)",
        "validation splits 4 s, stage-one search 30 s, ranker search 8 s",  # where the time went
    ]
    assert any("the last 14 days of the training part (2 splits)" in c.value for c in at.caption)
    # Validation NDCG per model, best first, the served pipeline marked.
    assert _table_rows(at, "served") == [
        {"model": "two-stage", "validation NDCG@10": "0.3102", "served": "✓"},
        {"model": "stage one", "validation NDCG@10": "0.2950", "served": ""},
        {"model": "ease", "validation NDCG@10": "0.2790", "served": ""},
        {"model": "popularity", "validation NDCG@10": "0.1203", "served": ""},
    ]
    # The knobs the search set, beside TrainParams' defaults.
    assert _table_rows(at, "knob") == [
        {"knob": "graph_kind", "chosen": "item_knn", "default": "ease"},
        {"knob": "graph_lowrank", "chosen": "64", "default": "32"},
        {"knob": "ranker_leaves", "chosen": "31", "default": "15"},
    ]
    # Every trial, pruned and failed ones without a score.
    assert _table_rows(at, "trial") == [
        {
            "trial": 0,
            "stage": "stage one",
            "state": "complete",
            "validation NDCG@10": "0.2811",
            "seconds": "3.2",
            "from": "defaults",
            "params": "graph_kind=ease, graph_lowrank=32",
        },
        {
            "trial": 1,
            "stage": "stage one",
            "state": "complete",
            "validation NDCG@10": "0.2950",
            "seconds": "2.9",
            "from": "version 1",
            "params": "graph_kind=item_knn, graph_lowrank=64",
        },
        {
            "trial": 2,
            "stage": "stage one",
            "state": "pruned",
            "validation NDCG@10": "—",
            "seconds": "1.1",
            "from": "sampler",
            "params": "graph_kind=ease, graph_lowrank=0",
        },
        {
            "trial": 3,
            "stage": "ranker",
            "state": "complete",
            "validation NDCG@10": "0.3102",
            "seconds": "8.4",
            "from": "sampler",
            "params": "ranker_leaves=31, ranker_prior_weight=1.5",
        },
        {
            "trial": 4,
            "stage": "ranker",
            "state": "failed",
            "validation NDCG@10": "—",
            "seconds": "0.3",
            "from": "sampler",
            "params": "ranker_leaves=7, ranker_prior_weight=0.5",
        },
    ]
    # The plot: completed trials' scores by trial number, one series per stage, and each
    # stage's best so far.
    (chart,) = [c for c in at.get("vega_lite_chart") if "layer" in json.loads(c.proto.spec)]
    layers = json.loads(chart.proto.spec)["layer"]
    assert [layer["mark"]["type"] for layer in layers] == ["point", "line"]
    assert {layer["encoding"]["color"]["field"] for layer in layers} == {"stage"}
    assert [layer["encoding"]["x"]["field"] for layer in layers] == ["trial", "trial"]
    assert [layer["encoding"]["y"]["field"] for layer in layers] == ["NDCG@10", "best so far"]
    plotted = convert_arrow_bytes_to_pandas_df(chart.proto.data.data)
    assert plotted[["trial", "stage", "NDCG@10", "best so far"]].to_dict("records") == [
        {"trial": 0, "stage": "stage one", "NDCG@10": 0.2811, "best so far": 0.2811},
        {"trial": 1, "stage": "stage one", "NDCG@10": 0.295, "best so far": 0.295},
        {"trial": 3, "stage": "ranker", "NDCG@10": 0.3102, "best so far": 0.3102},
    ]

    # Version 1 was trained before training tuned: said plainly, nothing else.
    at.selectbox(key=TUNING_VERSION_KEY).select(1).run()

    assert not at.exception
    assert [i.value for i in at.info] == [
        "Version 1 was not tuned: it was trained before training chose its own recipe, with "
        "the recipe it was given."
    ]
    assert not at.metric
    assert [str(t.value.columns[0]) for t in at.table] == ["version"]  # the registry's only
    assert all("layer" not in json.loads(c.proto.spec) for c in at.get("vega_lite_chart"))


def test_fixed_defaults_say_not_tuned_with_the_note(
    monkeypatch: pytest.MonkeyPatch, registry_gateway: tuple[str, FakeGateway]
) -> None:
    url, gateway = registry_gateway
    fixed = {
        **TUNING,
        "budget_seconds": 0.0,
        "spent_seconds": 0.0,
        "trials": [],
        "chosen": {},
        "validation_ndcg": {},
        "decision": "two_stage",
        "reason": "fixed defaults: the ranker is used",
        "note": "budget 0: fixed defaults",
    }
    gateway.routes[("GET", "/models/2")] = reply(model_detail(2, current=True, tuning=fixed))
    monkeypatch.setenv("UI_GATEWAY_URL", url)

    at = _open_models_page()

    assert not at.exception
    assert [i.value for i in at.info] == ["Version 2 was not tuned: budget 0: fixed defaults"]
    assert any(str(m.value).endswith("fixed defaults: the ranker is used") for m in at.markdown)
    assert not at.metric
    assert [str(t.value.columns[0]) for t in at.table] == ["version"]


def test_tuning_section_opens_on_the_version_just_trained(
    monkeypatch: pytest.MonkeyPatch, registry_gateway: tuple[str, FakeGateway]
) -> None:
    url, gateway = registry_gateway
    monkeypatch.setenv("UI_GATEWAY_URL", url)
    at = AppTest.from_file(APP, default_timeout=30).run()
    at.session_state[FINISHED_KEY] = 1  # as the Training page leaves it after a job

    at.switch_page(MODELS_PAGE).run()

    assert not at.exception
    assert at.selectbox(key=TUNING_VERSION_KEY).value == 1
    assert "/models/1" in gateway.paths("GET")
    assert any(str(i.value).startswith("Version 1 was not tuned") for i in at.info)


def test_unreadable_version_is_a_warning(
    monkeypatch: pytest.MonkeyPatch, registry_gateway: tuple[str, FakeGateway]
) -> None:
    url, gateway = registry_gateway
    gateway.routes[("GET", "/models/2")] = reply({"detail": "model version 2 does not exist"}, 404)
    monkeypatch.setenv("UI_GATEWAY_URL", url)

    at = _open_models_page()

    assert not at.exception
    assert [w.value for w in at.warning] == [
        "Could not read version 2: HTTP 404: model version 2 does not exist"
    ]
    assert _current_in_table(at) == [2]  # the rest of the page is still there


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


def test_a_stage_serving_an_older_version_is_a_warning(
    monkeypatch: pytest.MonkeyPatch, registry_gateway: tuple[str, FakeGateway]
) -> None:
    """The registry's current version (2) was refused by the candidate service, which keeps
    serving version 1: the table's mark alone would say users get version 2."""
    url, gateway = registry_gateway
    why = "model version 2 refused: model was built with a different feature set"
    gateway.routes[("GET", "/readyz")] = reply(
        {
            "status": "ok",
            "service": "gateway",
            "versions": {"candidate": 1, "ranker": 2},
            "refused": {"candidate": why},
        }
    )
    monkeypatch.setenv("UI_GATEWAY_URL", url)
    at = _open_models_page()
    assert not at.exception
    assert f"The candidate service still serves version 1: {why}" in [w.value for w in at.warning]
    assert _current_in_table(at) == [2]
    gateway.routes[("GET", "/readyz")] = reply(
        {"status": "ok", "service": "gateway", "versions": {"candidate": 2, "ranker": 2}}
    )  # an older gateway says nothing of refusals: no warning
    at.run()
    assert not [w.value for w in at.warning if "still serves" in w.value]
