"""One training run: evaluate the recipe on held-out data, then refit it on everything."""

from __future__ import annotations

from dataclasses import dataclass

from shared.datasets.base import Dataset, shuffled_links
from shared.datasets.size import require_trainable
from shared.ml.baselines import EASE, Popularity, Recommender
from shared.ml.dense_reuse import reuse_dense_fits
from shared.ml.version_artifacts import CATALOG, CONTENT, FEATURES, INDEX, RANKER
from shared.schemas.models import EvaluationSummary, TuningReport
from shared.training.evaluation import evaluate_split
from shared.training.params import TrainParams
from shared.training.pipeline import (
    LabelScheme,
    ProgressFn,
    build_catalog,
    fit_two_stage,
    no_progress,
)
from shared.training.search_space import WarmStart
from shared.training.splits import msr_split, temporal_split
from shared.training.tuning import tune


@dataclass(frozen=True)
class TrainOutput:
    artifacts: dict[str, bytes]
    metrics: dict[str, float]
    evaluation: EvaluationSummary | None = None
    params: TrainParams | None = None  # the recipe trained: the request's, as tuning chose it
    tuning: TuningReport | None = None


@reuse_dense_fits()  # EASE baselines and an EASE stage one over the same split fit once
def run_training(
    data: Dataset,
    params: TrainParams,
    progress: ProgressFn = no_progress,
    has_time: bool = True,
    warm: WarmStart | None = None,
) -> TrainOutput:
    """`warm`: a recipe the search tries right after its defaults (the serving version's)."""
    progress("loading", 0.05)
    require_trainable(data)
    if params.shuffle_links_seed is not None:  # a control model: popularity, nothing personal
        data = shuffled_links(data, params.shuffle_links_seed)
    catalog = build_catalog(data)
    scheme: LabelScheme = "temporal" if has_time else "random"
    split = (
        temporal_split(data, params.test_days) if has_time else msr_split(data, seed=params.seed)
    )
    # The recipe is chosen on validation splits of the evaluation's training part only: the
    # held-out test part below scores the chosen recipe as it would any other.
    progress("tuning", 0.08)
    params, tuning = tune(
        split.train, catalog, params, scheme, has_time, lambda line: progress(line, 0.08), warm
    )
    progress("evaluation", 0.1)
    baselines: list[Recommender] = [Popularity()]
    if len(catalog.items) <= params.graph_max_items:
        # The strongest simple baseline on both real data sets, so that every version says
        # whether its two stages beat it; its dense fit needs items^2 memory, as the graph's.
        baselines.append(EASE())
    evaluation = evaluate_split(split, catalog, params, 10, baselines)
    metrics = evaluation.flat()
    # The served model is refit on everything, with the same recipe that was just evaluated.
    cm, rm, valid_ndcg = fit_two_stage(data, catalog, params, scheme, progress, (0.5, 0.9))
    metrics["valid_ndcg@10"] = valid_ndcg
    metrics["ranker_best_iteration"] = float(rm.ranker.best_iteration)
    progress("publishing", 0.95)
    artifacts = {
        CATALOG: catalog.to_bytes(),
        FEATURES: cm.store.to_bytes(),
        INDEX: cm.index.to_bytes(),
        CONTENT: cm.content.to_bytes(),
        RANKER: rm.ranker.to_text().encode(),
    }
    return TrainOutput(
        artifacts=artifacts,
        metrics=metrics,
        evaluation=evaluation.summary(split.protocol),
        params=params,
        tuning=tuning,
    )
