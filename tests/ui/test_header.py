"""The page header: the served version's headline metrics against the strongest baseline."""

from __future__ import annotations

from typing import Any

from streamlit.testing.v1 import AppTest


def _header(metrics: dict[str, float]) -> AppTest:
    def script(metrics: dict[str, float]) -> None:
        from shared.schemas.models import ModelsResponse
        from ui.views.header import render_header

        version = {"version": 2, "created_at": "2024-05-03T10:00:00Z", "dataset": "x"}
        render_header(
            ModelsResponse.model_validate(
                {"current": 2, "versions": [{**version, "metrics": metrics}]}
            )
        )

    return AppTest.from_function(script, args=(metrics,)).run()


def _shown(at: AppTest) -> list[tuple[Any, Any, Any]]:
    return [(m.label, m.value, m.delta) for m in at.metric]


def test_compared_with_ease_when_the_version_measured_it() -> None:
    at = _header(
        {
            "ndcg@10": 0.30,
            "recall@10": 0.20,
            "ease_ndcg@10": 0.25,
            "ease_recall@10": 0.22,
            "popularity_ndcg@10": 0.10,
            "ranker_auc": 0.8,
        }
    )
    assert not at.exception
    assert at.caption[0].value.endswith("held-out metrics vs EASE")
    assert _shown(at) == [
        ("NDCG@10", "0.300", "+0.050 vs EASE"),
        ("Recall@10", "0.200", "-0.020 vs EASE"),
        ("Ranker AUC", "0.800", ""),
    ]


def test_popularity_when_ease_was_not_fitted_and_no_delta_without_a_baseline() -> None:
    at = _header({"ndcg@10": 0.3, "popularity_ndcg@10": 0.1})
    assert at.caption[0].value.endswith("held-out metrics vs popularity")
    assert _shown(at) == [("NDCG@10", "0.300", "+0.200 vs popularity")]
    at = _header({"ndcg@10": 0.3})
    assert at.caption[0].value.endswith("held-out metrics")
    assert _shown(at) == [("NDCG@10", "0.300", "")]
