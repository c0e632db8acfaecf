"""Tune the two-stage recipe on a validation split carved from the training part only.

    .venv/bin/python -m research.tune_quality --dataset online-retail \
        --data-path ../shared/data/online-retail/online_retail.csv.gz n_candidates=300

The validation split is the evaluation protocol applied again to the test split's training part
(temporal: the `test_days` before the test cut; msr: `msr_split` with seed 7), so the test split's
held-out items are never seen while tuning. `--test` also scores the real test split (once per
kept design change, as docs/benchmarks.md asks). Prints two_stage NDCG@k / the best baseline's.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import typer

from services.trainer.cli import parse_overrides
from shared.datasets.base import Dataset
from shared.schemas.training import TrainRequest
from shared.training.comparison import make_split
from shared.training.evaluation import baselines, evaluate_split
from shared.training.params import TrainParams
from shared.training.pipeline import build_catalog
from shared.training.splits import Split, msr_split, temporal_split

VALID_SEED = 7
# What `recsys evaluate` uses, so validation and test runs fit the same recipe.
EVALUATE_DEFAULTS: dict[str, Any] = {"test_days": 30, "n_candidates": 200, "seed": 42}
TWO_STAGE = ("two_stage", "candidates_only")


def validation_split(
    data: Dataset, protocol: str, test_days: int, has_time: bool, fold: int = 0
) -> Split:
    """The protocol applied again to the test split's training part. Fold j > 0: temporal, the
    window j windows earlier (the protocol applied again j more times); msr, seed 7 + j."""
    outer = make_split(data, protocol, test_days, has_time)
    if outer.protocol == "temporal":
        inner = temporal_split(outer.train, test_days)
        for _ in range(fold):
            inner = temporal_split(inner.train, test_days)
        return inner
    inner = msr_split(outer.train, seed=VALID_SEED + fold)
    return Split(inner.train, inner.truth, outer.protocol, f"validation of {outer.note}")


def score(split: Split, params: TrainParams, k: int) -> dict[str, float]:
    """two_stage and best-baseline NDCG@k on one split, and their ratio."""
    ev = evaluate_split(split, build_catalog(split.train), params, k, baselines())
    ndcg = {name: m[f"ndcg@{k}"] for name, m in ev.models.items()}
    best = max((n for n in ndcg if n not in TWO_STAGE), key=lambda n: ndcg[n])
    return {
        "two_stage": ndcg["two_stage"],
        "candidates_only": ndcg["candidates_only"],
        f"best_baseline ({best})": ndcg[best],
        "ratio": ndcg["two_stage"] / ndcg[best],
        "ranker_valid_ndcg@10": ev.extra["ranker_valid_ndcg@10"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--data-path", type=Path, required=True)
    parser.add_argument("--protocol", choices=["temporal", "msr"], default="temporal")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seeds", default="42", help="comma-separated TrainParams seeds")
    parser.add_argument("--test", action="store_true", help="also score the real test split")
    parser.add_argument(
        "--valid-folds",
        type=int,
        default=1,
        help="validation splits: temporal, that many windows back from the test cut; msr, seeds",
    )
    parser.add_argument("overrides", nargs="*", help="TrainParams fields as key=value")
    args = parser.parse_args(argv)
    try:
        values = {**EVALUATE_DEFAULTS, **parse_overrides(args.overrides)}
    except typer.BadParameter as exc:
        parser.error(exc.format_message())

    from shared.datasets.loader import load_with_report
    from shared.settings import get_common_settings

    if args.valid_folds < 1:
        parser.error("--valid-folds must be at least 1")
    request = TrainRequest.model_validate(
        {"dataset": args.dataset, "data_path": str(args.data_path.resolve()), "params": values}
    )
    data, load = load_with_report(request, get_common_settings().data_dir, allow_outside=True)
    splits = {
        "valid" if fold == 0 else f"valid{fold}": validation_split(
            data, args.protocol, values["test_days"], load.has_time, fold
        )
        for fold in range(args.valid_folds)
    }
    if args.test:
        splits["test"] = make_split(data, args.protocol, values["test_days"], load.has_time)
    for name, split in splits.items():
        ratios = []
        for seed in (int(s) for s in args.seeds.split(",")):
            # TrainParams' defaults where `values` leave a field unset (no dataset has its own)
            params = TrainRequest.model_validate(
                {"dataset": args.dataset, "params": {**values, "seed": seed}}
            ).params
            start = time.perf_counter()
            result = score(split, params, args.k)
            ratios.append(result["ratio"])
            shown = " ".join(f"{key} {value:.4f}" for key, value in result.items())
            print(f"{name} seed {seed}: {shown} ({time.perf_counter() - start:.0f} s)", flush=True)
        spread = f" ± {statistics.stdev(ratios):.4f}" if len(ratios) > 1 else ""
        print(f"{name}: two_stage / best baseline = {statistics.mean(ratios):.4f}{spread}")


if __name__ == "__main__":
    main()
