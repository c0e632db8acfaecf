"""The Evaluation page through AppTest: metric table and plots of a version's evaluation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from tests.ui.conftest import FakeGateway, fake_gateway, reply
from ui.views.evaluation import VERSION_KEY

APP = Path(__file__).resolve().parents[2] / "ui" / "app.py"
PAGE = "app_pages/evaluation.py"
METRICS = ["precision@10", "recall@10", "ndcg@10", "map@10", "hit_rate@10", "coverage@10"]


def _scores(base: float) -> dict[str, float]:
    return {m: base + i / 100 for i, m in enumerate(METRICS)} | {"fit_seconds": 1.5}


_V1_METRICS = {
    **_scores(0.2),
    **{f"popularity_{k}": v for k, v in _scores(0.1).items()},
    "ranker_auc": 0.75,
    "n_test_users": 120.0,
}
_SUMMARY = {"created_at": "2024-05-02T10:00:00Z", "dataset": "synthetic", "metrics": {}}
_V2 = {
    **_SUMMARY,
    "version": 2,
    "metrics": {"ndcg@10": 0.3, "ranker_auc": 0.8, "valid_ndcg@10": 0.31},
    "current": True,
    "params": {"dataset": "synthetic"},
    "evaluation": {
        "protocol": "temporal",
        "k": 10,
        "n_users": 278,
        "models": {
            "popularity": _scores(0.1),
            "candidates_only": _scores(0.2),
            "two_stage": _scores(0.3),
        },
        "ndcg_curves": {
            name: [base + k / 200 for k in range(1, 51)]
            for name, base in (("popularity", 0.05), ("candidates_only", 0.1), ("two_stage", 0.15))
        },
    },
}
_V1 = {**_SUMMARY, "version": 1, "metrics": _V1_METRICS, "current": False, "params": {}}
_MODELS = {
    "current": 2,
    "versions": [
        {k: v for k, v in m.items() if k not in ("current", "params", "evaluation")}
        for m in (_V1, _V2)
    ],
}


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGateway]:
    fake = FakeGateway(
        {
            ("GET", "/models"): reply(_MODELS),
            ("GET", "/models/1"): reply({**_V1, "evaluation": None}),
            ("GET", "/models/2"): reply(_V2),
        }
    )
    with fake_gateway(fake) as url:
        monkeypatch.setenv("UI_GATEWAY_URL", url)
        yield fake


def _open(timeout: float = 30) -> AppTest:
    return AppTest.from_file(APP, default_timeout=timeout).run().switch_page(PAGE).run()


def _rows(at: AppTest) -> list[dict[str, Any]]:
    assert len(at.table) == 1
    return [{str(k): v for k, v in r.items()} for r in at.table[0].value.to_dict("records")]


def _marks(at: AppTest) -> list[str]:
    """The mark of each chart ("bar", "line") from its Vega-Lite spec."""
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    # A line chart is layered (the line, and points for its tooltips): its first layer tells.
    return [(spec["layer"][0] if "layer" in spec else spec)["mark"]["type"] for spec in specs]


def test_current_version_shows_table_bars_and_curves(gateway: FakeGateway) -> None:
    at = _open()

    assert not at.exception
    assert not at.error and not at.info
    assert at.selectbox(key=VERSION_KEY).value == 2  # the current one first
    assert at.selectbox(key=VERSION_KEY).options == ["2 (current)", "1"]
    rows = _rows(at)
    assert [r["model"] for r in rows] == ["popularity", "candidates only", "two-stage"]
    assert rows[2]["ndcg@10"] == "0.3200" and rows[2]["fit time"] == "1.50 s"
    assert {m.label: m.value for m in at.metric} == {
        "ranker AUC": "0.800",
        "validation NDCG@10": "0.310",
    }
    assert _marks(at) == ["bar", "line"]  # metric bars, NDCG@K curves
    assert "278 users evaluated" in at.caption[0].value
    assert "protocol temporal" in at.caption[0].value
    assert ("GET", "/models/2", None) in gateway.requests


def test_older_version_without_curves_says_so(gateway: FakeGateway) -> None:
    at = _open()

    at.selectbox(key=VERSION_KEY).select(1).run()

    assert not at.exception
    rows = _rows(at)  # rebuilt from the flat metrics of the manifest
    assert [r["model"] for r in rows] == ["two-stage", "popularity"]
    assert rows[1]["precision@10"] == "0.1000"
    assert _marks(at) == ["bar"]
    infos = [i.value for i in at.info]
    assert infos == [
        "Version 1 was trained before NDCG@K curves were kept in the manifest: retrain to see them."
    ]


def test_no_versions_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeGateway({("GET", "/models"): reply({"current": None, "versions": []})})
    with fake_gateway(fake) as url:
        monkeypatch.setenv("UI_GATEWAY_URL", url)
        at = _open()

    assert not at.exception
    assert [i.value for i in at.info] == ["No model versions yet: train one on the Training page."]


@pytest.mark.integration
def test_evaluation_of_the_live_model(
    monkeypatch: pytest.MonkeyPatch, live_gateway_url: str
) -> None:
    monkeypatch.setenv("UI_GATEWAY_URL", live_gateway_url)
    current = httpx.get(f"{live_gateway_url}/models", timeout=10).json()["current"]

    at = _open(timeout=60)

    assert not at.exception
    assert not at.error and not at.info, [*at.error, *at.info]
    assert at.selectbox(key=VERSION_KEY).value == current
    models = [r["model"] for r in _rows(at)]
    assert set(models) == {"popularity", "ease", "candidates only", "two-stage"}
    assert _marks(at) == ["bar", "line"]
