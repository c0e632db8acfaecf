"""What an offline evaluation keeps for a model manifest."""

from __future__ import annotations

import math

from shared.schemas.models import EvaluationSummary
from shared.training.evaluation import Evaluation


def test_summary_keeps_models_and_curves_but_no_nan() -> None:
    evaluation = Evaluation(
        k=10,
        n_users=3,
        models={
            "two_stage": {"ndcg@10": 0.3, "fit_seconds": 2.0, "odd": math.nan},
            "popularity": {"ndcg@10": 0.1, "fit_seconds": 0.01},
        },
        ndcg_curves={"two_stage": [0.1234567891, 0.2], "popularity": [0.05, math.inf]},
        extra={"ranker_auc": math.nan},
    )

    summary = evaluation.summary("temporal")

    assert summary == EvaluationSummary(
        protocol="temporal",
        k=10,
        n_users=3,
        models={
            "two_stage": {"ndcg@10": 0.3, "fit_seconds": 2.0},
            "popularity": {"ndcg@10": 0.1, "fit_seconds": 0.01},
        },
        ndcg_curves={"two_stage": [0.123457, 0.2]},
    )
    # It goes into a JSON manifest: it must come back the same.
    assert EvaluationSummary.model_validate_json(summary.model_dump_json()) == summary
