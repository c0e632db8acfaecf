"""How training chose a version's recipe (its `TuningReport`): the Models page shows all of it,
the Training page a summary of the version its last job produced."""

from __future__ import annotations

import math
from typing import Any

import streamlit as st

from shared.schemas.models import Knob, ModelDetail, TuningReport, TuningTrial
from shared.training.params import TrainParams
from ui.views.evaluation import label

SECTION_TITLE = "How this recipe was chosen"
# The version the last training job of this session produced: the Training page summarises its
# search, the Models page opens on it.
FINISHED_KEY = "train_finished_version"
# Relative to ui/app.py, as st.page_link wants it.
MODELS_PAGE = "app_pages/models.py"
STAGES = {"stage_one": "stage one", "ranker": "ranker"}
DECISIONS = {
    "two_stage": "two-stage: stage one's candidates reordered by the ranker",
    "stage_one": "stage one alone: the ranker steps aside",
}


def render_tuning(detail: ModelDetail) -> None:
    """The whole story of `detail`'s recipe (Models page)."""
    tuning = _headline(detail)
    if tuning is None:
        return
    if tuning.validation_ndcg:
        st.markdown("**Validation NDCG@10 by model** (the same validation splits)")
        st.table(validation_rows(tuning), hide_index=True)
    if tuning.chosen:
        st.markdown("**Knobs the search set**")
        st.table(chosen_rows(tuning.chosen), hide_index=True)
    if not tuning.trials:
        return
    st.markdown("**Validation NDCG@10 by trial**")
    _trial_chart(tuning.trials)
    with st.expander(f"All {len(tuning.trials)} trials", expanded=len(tuning.trials) <= 12):
        st.table(trial_rows(tuning.trials), hide_index=True)


def render_tuning_summary(detail: ModelDetail) -> None:
    """A few lines on `detail`'s recipe search and where to see the rest (Training page)."""
    if _headline(detail) is None:
        return
    st.page_link(
        MODELS_PAGE,
        label=f"Version {detail.version}'s trials, validation scores and chosen knobs: Models",
        icon=":material/inventory_2:",
    )


def _headline(detail: ModelDetail) -> TuningReport | None:
    """Decision, reason and the search's size; the report, None if there is none to show more of."""
    tuning = detail.tuning
    if tuning is None:
        st.info(
            f"Version {detail.version} was not tuned: it was trained before training chose its "
            "own recipe, with the recipe it was given."
        )
        return None
    st.markdown(f"**Served pipeline:** {decision_text(tuning.decision)}  \n{tuning.reason}")
    if not tuning.trials:
        note = f": {tuning.note}" if tuning.note else "."
        st.info(f"Version {detail.version} was not tuned{note}")
    else:
        if tuning.note:
            st.caption(tuning.note)
        best = best_trial(tuning.trials)
        trials, best_score, spent = st.columns(3)
        trials.metric("Trials", len(tuning.trials), help=trial_states(tuning.trials))
        best_score.metric(
            "Best validation NDCG@10",
            fmt(best.score if best else None, "{:.4f}"),
            help=f"Trial {best.number} ({STAGES[best.stage]})" if best else "No trial completed.",
        )
        spent.metric(
            "Search time",
            f"{tuning.spent_seconds:.0f} s of {tuning.budget_seconds:.0f} s",
            help=phase_text(tuning.phase_seconds),
        )
    if tuning.n_splits:
        splits = f"{tuning.n_splits} split{'' if tuning.n_splits == 1 else 's'}"
        st.caption(
            f"Validation: {tuning.validation} ({splits}), carved from the training data: the "
            "held-out test split that scores the version plays no part in the choice."
        )
    return tuning


def phase_text(phases: dict[str, float]) -> str | None:
    """Where the search's time went, e.g. "validation splits 24 s, stage-one search 100 s"; None
    for versions tuned before it was recorded."""
    return ", ".join(f"{name} {s:.0f} s" for name, s in phases.items()) or None


def decision_text(decision: str) -> str:
    return DECISIONS.get(decision, decision)


def best_trial(trials: list[TuningTrial]) -> TuningTrial | None:
    scored = [(t.score, -t.number, t) for t in trials if t.state == "complete" and _finite(t.score)]
    return max(scored, key=lambda s: s[:2])[2] if scored else None


def trial_states(trials: list[TuningTrial]) -> str:
    """E.g. "12 complete, 3 pruned"."""
    counts = {
        state: sum(t.state == state for t in trials) for state in ("complete", "pruned", "failed")
    }
    return ", ".join(f"{n} {state}" for state, n in counts.items() if n)


def validation_rows(tuning: TuningReport) -> list[dict[str, str]]:
    """One row per model, best first; the served pipeline marked."""
    ranked = sorted(tuning.validation_ndcg.items(), key=lambda kv: _sort_key(kv[1]))
    return [
        {
            "model": label(name),
            "validation NDCG@10": fmt(score, "{:.4f}"),
            "served": "✓" if name == tuning.decision else "",
        }
        for name, score in ranked
    ]


def chosen_rows(chosen: dict[str, Knob]) -> list[dict[str, str]]:
    defaults = TrainParams()
    return [
        {
            "knob": knob,
            "chosen": knob_text(value),
            "default": knob_text(getattr(defaults, knob)) if hasattr(defaults, knob) else "—",
        }
        for knob, value in sorted(chosen.items())
    ]


def trial_rows(trials: list[TuningTrial]) -> list[dict[str, str | int]]:
    return [
        {
            "trial": t.number,
            "stage": STAGES[t.stage],
            "state": t.state,
            "validation NDCG@10": fmt(t.score, "{:.4f}"),
            "seconds": fmt(t.seconds, "{:.1f}"),
            "from": t.origin or "sampler",
            "params": params_text(t.params),
        }
        for t in sorted(trials, key=lambda t: (t.number, t.stage))
    ]


def params_text(params: dict[str, Knob]) -> str:
    """Compact: "graph_lowrank=32, ranker_prior_weight=1.5"."""
    return ", ".join(f"{k}={knob_text(v)}" for k, v in sorted(params.items())) or "—"


def knob_text(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def chart_rows(trials: list[TuningTrial]) -> list[dict[str, Any]]:
    """Completed trials with their score and each stage's best score so far (by trial number)."""
    rows: list[dict[str, Any]] = []
    best: dict[str, float] = {}
    for t in sorted(trials, key=lambda t: t.number):
        if t.state != "complete" or t.score is None or not math.isfinite(t.score):
            continue
        stage = STAGES[t.stage]
        best[stage] = max(best.get(stage, t.score), t.score)
        rows.append(
            {
                "trial": t.number,
                "stage": stage,
                "NDCG@10": t.score,
                "best so far": best[stage],
                "params": params_text(t.params),
            }
        )
    return rows


def _trial_chart(trials: list[TuningTrial]) -> None:
    rows = chart_rows(trials)
    if not rows:
        st.caption("No trial completed: nothing to plot.")
        return
    x = {"field": "trial", "type": "quantitative", "title": "trial number"}
    color = {"field": "stage", "type": "nominal", "title": "stage"}
    y_scale = {"zero": False}
    st.vega_lite_chart(
        {column: [r[column] for r in rows] for column in rows[0]},
        {
            "layer": [
                {
                    "mark": {"type": "point", "filled": True, "size": 60},
                    "encoding": {
                        "x": x,
                        "y": {
                            "field": "NDCG@10",
                            "type": "quantitative",
                            "title": "validation NDCG@10",
                            "scale": y_scale,
                        },
                        "color": color,
                        "tooltip": [
                            {"field": "trial", "type": "quantitative"},
                            {"field": "stage", "type": "nominal"},
                            {"field": "NDCG@10", "type": "quantitative", "format": ".4f"},
                            {"field": "params", "type": "nominal"},
                        ],
                    },
                },
                {
                    "mark": {"type": "line", "interpolate": "step-after", "strokeDash": [4, 3]},
                    "encoding": {
                        "x": x,
                        "y": {"field": "best so far", "type": "quantitative", "scale": y_scale},
                        "color": color,
                    },
                },
            ]
        },
        height=320,
    )
    st.caption(
        "Points: each completed trial's mean validation NDCG@10; dashed: each stage's best so "
        "far. Pruned and failed trials have no score."
    )


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _sort_key(value: float) -> tuple[bool, float]:
    return (not math.isfinite(value), -value if math.isfinite(value) else 0.0)


def fmt(value: float | None, pattern: str) -> str:
    return pattern.format(value) if _finite(value) else "—"
