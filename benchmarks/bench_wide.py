"""`make bench-wide`: stage one's request on a wide catalog, in process, both ways it can run.

Takes a trained version's artifact folder (a file artifact store's `v<N>/`), pads its catalog to
`--items` products with tail products nobody took (each a real product's embedding plus noise,
its low-rank filter column scaled to the median length, no graph row, no popularity), builds HNSW
as the candidate service does, then times `generate_candidates` for random users with a history
on that index, alternately:

- `arrays`: every score as an array over the catalog and the low-rank filter multiplied against
  every item (how stage one ran before 2026-12-05; still the path below 32,768 items);
- `reached`: scores kept over the items a request reaches, the filter scanned longest column
  first (the path above that size).

Both give the same candidates (the item sets are compared; order may differ among scores tied
to the last float32 bit). Results in docs/benchmarks.md ("A wide catalog through training and
stage one"); a table here and JSON in `--out`.

    .venv/bin/python -m benchmarks.bench_wide --version-dir /tmp/m1/store/v1 [--items 1000000]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import orjson
import scipy.sparse as sp
import typer
from rich.console import Console
from rich.table import Table

from shared.ml.stage_one import search
from shared.ml.stage_one.index import CandidateIndex, LowRankFilter
from shared.ml.stage_one.serving import CandidateStage
from shared.ml.stage_one.vector_index import AnnParams

DEFAULT_OUT = Path("var/bench/bench_wide.json")
WARMUP = 50

app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0] if __doc__ else None)
console = Console(width=None if sys.stdout.isatty() else 140)


def padded(index: CandidateIndex, total: int, seed: int) -> CandidateIndex:
    """`index` with tail products appended up to `total` (see the module's docstring)."""
    n0 = index.n_items
    extra = max(total - n0, 0)
    rng = np.random.default_rng(seed)
    src = rng.integers(0, n0, extra)
    noise = rng.normal(size=(extra, index.embeddings.shape[1])).astype(np.float32)
    emb = index.embeddings[src] + 0.3 * noise * float(np.abs(index.embeddings).mean())
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    graph = None
    if index.graph is not None:
        g = index.graph.tocsr()
        indptr = np.concatenate([g.indptr, np.full(extra, g.indptr[-1])])
        graph = sp.csr_matrix((g.data, g.indices, indptr), shape=(n0 + extra, n0 + extra))
    lowrank = None
    if index.lowrank is not None:
        left, right = index.lowrank.left, index.lowrank.right
        lengths = np.linalg.norm(right, axis=0)
        scale = np.median(lengths) / np.maximum(lengths[src], 1e-12)
        lowrank = LowRankFilter(
            np.vstack([left, left[src]]).astype(np.float32),
            np.hstack([right, right[:, src] * scale]).astype(np.float32),
        )
    popularity = np.concatenate([index.popularity, np.zeros(extra, dtype=np.float32)])
    return CandidateIndex(np.vstack([index.embeddings, emb]), popularity, graph, lowrank)


def timed(
    model: CandidateStage, index: CandidateIndex, users: np.ndarray, arrays: bool
) -> tuple[list[float], list[frozenset[int]]]:
    """(milliseconds per call after the warm-up, each call's item set) on one path."""
    lowrank = index.lowrank
    saved = search.DENSE_MAX_ITEMS, lowrank.scan_min_items if lowrank is not None else 0
    # both switches above the catalog's width (the narrow catalog's path) or at zero
    width = index.n_items + 1 if arrays else 0
    search.DENSE_MAX_ITEMS = width
    if lowrank is not None:
        lowrank.scan_min_items = width
    try:
        ms, sets = [], []
        for i, user in enumerate(users.tolist()):
            t = time.perf_counter()
            r = search.generate_candidates(index, model.history, user, model.store.as_of, 100)
            if i >= WARMUP:
                ms.append((time.perf_counter() - t) * 1e3)
            sets.append(frozenset(r.items.tolist()))
        return ms, sets
    finally:
        search.DENSE_MAX_ITEMS = saved[0]
        if lowrank is not None:
            lowrank.scan_min_items = saved[1]


@app.command()
def main(
    version_dir: Annotated[Path, typer.Option(help="a version's artifact folder")],
    items: Annotated[int, typer.Option(help="products after padding")] = 1_000_000,
    calls: Annotated[int, typer.Option(help="timed calls per path and run")] = 500,
    runs: Annotated[int, typer.Option(min=1, help="runs of each path, alternating")] = 2,
    threads: Annotated[int, typer.Option(help="HNSW build threads")] = 2,
    seed: int = 0,
    out: Path = DEFAULT_OUT,
) -> None:
    artifacts = {p.name: p.read_bytes() for p in version_dir.iterdir() if p.is_file()}
    model = CandidateStage.from_artifacts(artifacts)
    index = padded(model.index, items, seed)
    t = time.perf_counter()
    index.use_backend(AnnParams(backend="hnsw", num_threads=threads))
    build_s = time.perf_counter() - t
    console.print(
        f"{index.n_items:,} products ({model.index.n_items:,} trained), HNSW {build_s:.0f} s"
    )
    active = np.flatnonzero(np.diff(model.history.indptr) > 0)
    users = np.random.default_rng(seed).choice(active, size=calls + WARMUP)
    result: dict[str, Any] = {
        "items": index.n_items,
        "trained_items": model.index.n_items,
        "hnsw_build_seconds": build_s,
        "calls": calls,
        "runs": [],
    }
    sets: dict[str, list[frozenset[int]]] = {}
    table = Table("run", "path", "p50 ms", "p90 ms", "p99 ms")
    for run in range(runs):
        for path in ("arrays", "reached"):
            ms, sets[path] = timed(model, index, users, path == "arrays")
            p50, p90, p99 = (float(v) for v in np.percentile(ms, [50, 90, 99]))
            result["runs"].append({"run": run, "path": path, "p50_ms": p50, "p90_ms": p90,
                                   "p99_ms": p99})  # fmt: skip
            table.add_row(str(run + 1), path, f"{p50:.2f}", f"{p90:.2f}", f"{p99:.2f}")
    same = sum(a == b for a, b in zip(sets["arrays"], sets["reached"], strict=True))
    result["same_item_sets"] = same
    console.print(table)
    console.print(f"same candidate sets on both paths: {same} of {len(users)} calls")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    console.print(f"wrote {out}")


if __name__ == "__main__":
    app()
