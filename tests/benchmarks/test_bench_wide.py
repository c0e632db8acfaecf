"""`make bench-wide` as a smoke test: on a small trained stage one padded to a few thousand
products, both paths run, give the same candidates, and the JSON holds their timings."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import orjson
import pytest

from benchmarks.bench_wide import padded_version
from shared.datasets import synthetic
from shared.ml.stage_one.serving import CandidateStage
from shared.ml.version_artifacts import CATALOG, CONTENT, FEATURES, INDEX
from shared.training.params import TrainParams
from shared.training.pipeline import build_catalog, stage_one
from tests.benchmarks.conftest import run_benchmark


def test_both_paths_run_and_agree(tmp_path: Path) -> None:
    data = synthetic.generate(n_users=80, n_products=200, n_days=60, seed=5)
    catalog = build_catalog(data)
    end = float(data.interactions["ts"].max()) + 1
    cm = stage_one(data, catalog, end, TrainParams(embedding_dim=8, graph_lowrank=8))
    version = tmp_path / "v1"
    version.mkdir()
    for name, blob in ((CATALOG, catalog.to_bytes()), (FEATURES, cm.store.to_bytes()),
                       (INDEX, cm.index.to_bytes()), (CONTENT, cm.content.to_bytes())):  # fmt: skip
        (version / name).write_bytes(blob)
    out = tmp_path / "wide.json"
    args = ["--version-dir", str(version), "--items", "3000", "--calls", "40", "--runs", "1",
            "--threads", "1", "--out", str(out)]  # fmt: skip
    done = run_benchmark("bench_wide", args, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = orjson.loads(out.read_bytes())
    assert result["items"] == 3000 and result["trained_items"] == len(catalog.items)
    assert [r["path"] for r in result["runs"]] == ["arrays", "reached"]
    assert all(r["p50_ms"] > 0 for r in result["runs"])
    assert result["same_item_sets"] == 40 + 50  # every call, the warm-up's included


@pytest.mark.parametrize("kind", ["ease", "als"])
def test_padded_version_loads_as_one_catalog(kind: Literal["ease", "als"]) -> None:
    """What `--stack` publishes: every artifact covers the padded catalog (ALS's factors too),
    the trained users keep their histories."""
    data = synthetic.generate(n_users=60, n_products=150, n_days=60, seed=6)
    catalog = build_catalog(data)
    end = float(data.interactions["ts"].max()) + 1
    params = TrainParams(embedding_dim=8, graph_lowrank=8, graph_kind=kind, als_factors=8)
    cm = stage_one(data, catalog, end, params)
    artifacts = {CATALOG: catalog.to_bytes(), FEATURES: cm.store.to_bytes(),
                 INDEX: cm.index.to_bytes(), CONTENT: cm.content.to_bytes()}  # fmt: skip
    wide = CandidateStage.from_artifacts(padded_version(artifacts, 2000, seed=0))
    assert len(wide.catalog.items) == wide.index.n_items == 2000
    assert len(wide.store.item_log_pop_all) == wide.content.vectors.shape[0] == 2000
    assert (wide.store.item_log_pop_all[len(catalog.items) :] == 0).all()  # nobody took them
    if kind == "als":
        assert wide.index.fold_in is not None and wide.index.fold_in.n_items == 2000
    known, cands = wide.candidates(wide.catalog.users.ids[0], 10)
    assert known and len(set(cands.products)) == 10
