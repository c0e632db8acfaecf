"""`recsys evaluate`: every model on one split of one dataset, side by side, as JSON (+ HTML)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from shared.datasets.base import Dataset
from shared.datasets.size import require_trainable
from shared.ml.dense_reuse import reuse_dense_fits
from shared.schemas.models import TuningReport
from shared.training.evaluation import Evaluation, baselines, evaluate_split
from shared.training.params import TrainParams
from shared.training.pipeline import LabelScheme, build_catalog
from shared.training.report import budget_spent, versus_line, write_html_report
from shared.training.splits import Split, msr_split, temporal_split
from shared.training.tuning import tune

METRICS = ["precision", "recall", "ndcg", "map", "hit_rate", "coverage"]
# Fewer test users than this and the split's note says the figures are noise (the paired
# interval beside the ratio shows how much).
FEW_TEST_USERS = 100
# Result keys the table (or a line of their own) already shows, or too long to print.
NOT_PRINTED_AS_IS = frozenset(
    {
        "dataset",
        "protocol",
        "k",
        "n_users",
        "models",
        "split",
        "params",
        "versus_best_baseline",
        "tuning",
    }
)


def make_split(data: Dataset, protocol: str, test_days: int, has_time: bool) -> Split:
    """The protocol's test split; its note says so where it holds few users to score."""
    if protocol == "msr":
        split = msr_split(data)
    elif not has_time:
        split = msr_split(data)
        note = "no time column: temporal falls back to a seeded random per-user 75/25 split"
        split = Split(split.train, split.truth, "temporal-random-fallback", note)
    else:
        split = temporal_split(data, test_days)
    if len(split.truth) < FEW_TEST_USERS:
        who = "users with held-out items they did not have before"
        if split.protocol == "temporal":
            who = (
                "users with interactions on both sides of the cut: a log whose visitors rarely "
                "come back has few; a longer --test-days or --protocol msr gives more"
            )
        few = f"only {len(split.truth):,} test users ({who}): figures over so few are noise"
        split = replace(split, note=f"{split.note}\n{few}")
    return split


@reuse_dense_fits()  # EASE baselines and an EASE stage one over the same split fit once
def run_benchmark(
    data: Dataset, protocol: str, k: int, params: TrainParams, has_time: bool, console: Console
) -> tuple[dict[str, Any], Evaluation]:
    require_trainable(data)
    split = make_split(data, protocol, params.test_days, has_time)
    console.print(split.note)
    catalog = build_catalog(data)  # the full catalog: metrics rank over every item
    scheme: LabelScheme = "temporal" if split.protocol == "temporal" else "random"
    # The recipe is chosen on validation splits carved from the split's training part only.
    params, tuning = tune(split.train, catalog, params, scheme, has_time, console.print)
    console.print(tuning_line(tuning))
    ev = evaluate_split(
        split, catalog, params, k, baselines(), lambda m: console.print(f"fitting {m} …")
    )
    result: dict[str, Any] = {
        "dataset": data.name,
        "protocol": protocol,
        "k": k,
        "n_users": ev.n_users,
        "n_items": len(catalog.items),
        "split": split.note,
        # the split used: `protocol` stays what was asked ("temporal" without times falls back)
        "split_protocol": split.protocol,
        "models": ev.models,
        **ev.extra,
        "versus_best_baseline": ev.versus,
        "skipped_models": ev.skipped,
        "params": params.model_dump(mode="json"),  # the recipe these numbers came from
        "tuning": tuning.model_dump(mode="json"),
    }
    return result, ev


def tuning_line(t: TuningReport) -> str:
    if t.note:
        return f"tuning: {t.note}"
    done = sum(1 for x in t.trials if x.state == "complete")
    spent = budget_spent(t.budget_seconds, t.spent_seconds, t.phase_seconds)
    warm = sorted({o for x in t.trials if (o := x.origin or "").startswith("version ")})
    tried = "".join(f"; {v}'s recipe tried" for v in warm)
    return (
        f"tuning: {len(t.trials)} trials ({done} complete{tried}) in {t.spent_seconds:.0f} s "
        f"({spent}) on {t.n_splits} validation split(s); chose {t.chosen}; "
        f"served: {t.decision} ({t.reason})"
    )


def print_table(result: dict[str, Any], console: Console) -> None:
    k = result["k"]
    table = Table(
        title=f"{result['dataset']} · {result['split_protocol']} · {result['n_users']} users · @{k}"
    )
    table.add_column("model")
    for m in METRICS:
        table.add_column(f"{m}@{k}", justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("peak MB", justify="right")
    ranked = sorted(result["models"].items(), key=lambda kv: -kv[1][f"ndcg@{k}"])
    for name, metrics in ranked:
        table.add_row(
            name,
            *(f"{metrics[f'{m}@{k}']:.4f}" for m in METRICS),
            f"{metrics['fit_seconds']:.1f}",
            f"{metrics.get('peak_rss_mb', float('nan')):.0f}",
        )
    console.print(table)
    for key, value in result.items():
        if key not in NOT_PRINTED_AS_IS:
            console.print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
    if versus := result.get("versus_best_baseline"):
        console.print(versus_line(versus, k))


def write_outputs(result: dict[str, Any], ev: Evaluation, out: Path, report: Path | None) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        write_html_report(result, ev.ndcg_curves, report)
