"""Self-contained HTML report of an offline evaluation: metrics table, bar charts, NDCG@K curves.

Everything is inline (CSS, PNGs as base64 data URIs) so the file can be attached to a CI run or
opened offline; there are no scripts and nothing fetched from the network.
"""

from __future__ import annotations

import base64
import html
import io
import math
import numbers
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

# Figure, not pyplot: no global backend or figure registry, so rendering is safe in worker threads
# and does not depend on a display; Figure.savefig uses the Agg canvas.
from matplotlib.figure import Figure

RANKING_METRICS = ("precision", "recall", "ndcg", "map", "hit_rate", "coverage")
HEADER_KEYS = frozenset({"dataset", "protocol", "k", "n_users", "models"})

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; }
.meta { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #ccc; padding: .3rem .6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
td.best { font-weight: bold; background: #eef7ee; }
img { max-width: 100%; display: block; margin: 1rem 0; }
"""


def _is_number(value: Any) -> bool:
    # numbers.Real also admits numpy scalars (np.float32 is not a float subclass); bools are flags.
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _fmt(value: Any) -> str:
    if not _is_number(value):
        return html.escape(str(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    return f"{float(value):.4f}"


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="chart" src="data:image/png;base64,{data}">'


def _metric_columns(models: dict[str, dict[str, Any]], k: int) -> list[str]:
    """The standard ranking metrics first, then fit_seconds and any other numeric model keys."""
    fixed = [f"{m}@{k}" for m in RANKING_METRICS]
    seen = {key for scores in models.values() for key, v in scores.items() if _is_number(v)}
    extra = sorted(seen - set(fixed) - {"fit_seconds"})
    return fixed + (["fit_seconds"] if "fit_seconds" in seen else []) + extra


def _metrics_table(models: dict[str, dict[str, Any]], columns: list[str]) -> str:
    best: dict[str, float] = {}
    for col in columns:
        values = [float(s[col]) for s in models.values() if _is_number(s.get(col))]
        values = [v for v in values if math.isfinite(v)]
        if len(values) > 1:
            # Lower is better only for timings; every ranking metric is higher-is-better.
            best[col] = min(values) if col.endswith("seconds") else max(values)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["model", *columns])
    rows = []
    for name, scores in models.items():
        cells = [f"<td>{html.escape(name)}</td>"]
        for col in columns:
            value = scores.get(col)
            if value is None:
                cells.append("<td>&mdash;</td>")
            else:
                is_best = col in best and _is_number(value) and float(value) == best[col]
                cls = ' class="best"' if is_best else ""
                cells.append(f"<td{cls}>{_fmt(value)}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _versus(result: dict[str, Any], k: int) -> str:
    versus = result.get("versus_best_baseline")
    return f'<p class="meta">{html.escape(versus_line(versus, k))}</p>' if versus else ""


def _extras_table(result: dict[str, Any]) -> str:
    extras = {
        key: value
        for key, value in result.items()
        if key not in HEADER_KEYS and (_is_number(value) or isinstance(value, str | bool))
    }
    if not extras:
        return ""
    return f"<h2>Other results</h2>{_pairs_table(extras.items())}"


def _pairs_table(pairs: Iterable[tuple[object, object]]) -> str:
    """A two-column table: a name, its formatted value."""
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{_fmt(v)}</td></tr>" for k, v in pairs)
    return f"<table><tbody>{rows}</tbody></table>"


def versus_line(versus: dict[str, Any], k: int) -> str:
    """`two_stage / ease NDCG@10: 1.005 x (95 % CI 0.991-1.019 over users, paired bootstrap)`"""
    lo, hi = versus["ci95"]
    return (
        f"{versus['model']} / {versus['baseline']} NDCG@{k}: {versus[f'ndcg@{k}_ratio']:.3f} x "
        f"(95 % CI {lo:.3f}-{hi:.3f} over users, paired bootstrap)"
    )


def _grouped_bars(models: dict[str, dict[str, Any]], metrics: list[str]) -> Figure:
    fig = Figure(figsize=(10, 4.5))
    ax = fig.subplots()
    names = list(models)
    width = 0.8 / max(len(names), 1)
    x = np.arange(len(metrics))
    for i, name in enumerate(names):
        values = [float(models[name].get(m, np.nan)) for m in metrics]
        ax.bar(x + (i - (len(names) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(x, metrics)
    ax.set_ylabel("score")
    ax.set_title("Ranking metrics by model")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    return fig


def _fit_time_bars(models: dict[str, dict[str, Any]]) -> Figure:
    timed = {
        n: float(s["fit_seconds"]) for n, s in models.items() if _is_number(s.get("fit_seconds"))
    }
    fig = Figure(figsize=(6, 3))
    ax = fig.subplots()
    ax.bar(list(timed), list(timed.values()), color="#888")
    ax.set_ylabel("seconds")
    ax.set_title("Fit time")
    ax.grid(axis="y", alpha=0.3)
    return fig


def _ndcg_curves(curves: dict[str, list[float]], k: int) -> Figure:
    fig = Figure(figsize=(8, 4.5))
    ax = fig.subplots()
    for name, values in curves.items():
        if values:
            ax.plot(np.arange(1, len(values) + 1), values, label=name)
    ax.axvline(k, color="#999", linestyle="--", linewidth=1)  # the headline cutoff
    ax.set_xlabel("K")
    ax.set_ylabel("NDCG@K")
    ax.set_title("NDCG@K by cutoff")
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def _tuning_plot(trials: list[dict[str, Any]]) -> Figure:
    fig = Figure(figsize=(8, 4))
    ax = fig.subplots()
    for stage, marker in (("stage_one", "o"), ("ranker", "s")):
        done = [t for t in trials if t["stage"] == stage and t["score"] is not None]
        if not done:
            continue
        xs, ys = [t["number"] for t in done], [t["score"] for t in done]
        ax.scatter(xs, ys, marker=marker, label=f"{stage} trials", alpha=0.7)
        ax.plot(xs, np.maximum.accumulate(ys), linewidth=1, label=f"{stage} best so far")
    ax.set_xlabel("trial (per search)")
    ax.set_ylabel("validation NDCG@10")
    ax.set_title("Recipe search")
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def budget_spent(budget: float, spent: float, phases: dict[str, float]) -> str:
    """The budget, and where the time went by phase, e.g. "budget 180 s, past it: what the
    choice needs ran to its end; validation splits 24 s, stage-one search 100 s, …"."""
    # The search stops at the budget; what the choice needs whatever the time (a trial under
    # way, one ranker, the baselines on validation, a second look at a contested ranker) runs
    # after it.
    past = ", past it: what the choice needs ran to its end" if spent > budget else ""
    by_phase = ", ".join(f"{name} {s:.0f} s" for name, s in phases.items())
    return f"budget {budget:g} s{past}" + (f"; {by_phase}" if by_phase else "")


def _tuning_section(tuning: dict[str, Any] | None) -> str:
    """How training chose the recipe: decision, validation scores, chosen knobs, every trial."""
    if not tuning:
        return ""
    esc = html.escape
    spent = budget_spent(
        tuning["budget_seconds"], tuning["spent_seconds"], tuning.get("phase_seconds", {})
    )
    parts = [
        "<h2>How the recipe was chosen</h2>",
        f"<p>served: <b>{esc(str(tuning['decision']))}</b> &middot; {esc(str(tuning['reason']))}"
        f"</p><p class='meta'>{len(tuning['trials'])} trials in {tuning['spent_seconds']} s "
        f"({esc(spent)}) on {tuning['n_splits']} validation split(s): "
        f"{esc(str(tuning['validation']))}</p>",
    ]
    if tuning.get("note"):
        parts.append(f"<p>{esc(str(tuning['note']))}</p>")
    if tuning["validation_ndcg"]:
        best_first = sorted(tuning["validation_ndcg"].items(), key=lambda kv: -kv[1])
        parts.append(f"<h3>Validation NDCG@10</h3>{_pairs_table(best_first)}")
    if tuning["chosen"]:
        parts.append(f"<h3>Chosen knobs</h3>{_pairs_table(tuning['chosen'].items())}")
    if tuning["trials"]:
        parts.append(_png(_tuning_plot(tuning["trials"])))
        rows = "".join(
            f"<tr><td>{t['number']}</td><td>{esc(t['stage'])}</td><td>{esc(t['state'])}</td>"
            f"<td>{_fmt(t['score']) if t['score'] is not None else '-'}</td>"
            f"<td>{t['seconds']}</td><td>{esc(str(t.get('origin') or 'sampler'))}</td>"
            f"<td>{esc(str(t['params']))}</td></tr>"
            for t in tuning["trials"]
        )
        parts.append(
            "<h3>Trials</h3><table><thead><tr><th>#</th><th>search</th><th>state</th>"
            "<th>NDCG@10</th><th>s</th><th>from</th><th>knobs</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
        )
    return "\n".join(parts)


def write_html_report(
    result: dict[str, Any], ndcg_curves: dict[str, list[float]], path: Path
) -> None:
    """Write the evaluation `result` (contract JSON shape) and per-model NDCG@K curves
    (`ndcg_curves[model][K - 1]`) as one self-contained HTML file at `path`."""
    k = int(result["k"])
    models: dict[str, dict[str, Any]] = result.get("models", {})
    columns = _metric_columns(models, k)
    dataset = html.escape(str(result.get("dataset", "?")))
    protocol = html.escape(str(result.get("protocol", "?")))
    n_users = html.escape(str(result.get("n_users", "?")))

    charts = []
    if models:
        charts.append(_png(_grouped_bars(models, [f"{m}@{k}" for m in RANKING_METRICS])))
        if "fit_seconds" in columns:
            charts.append(_png(_fit_time_bars(models)))
    if any(ndcg_curves.values()):
        charts.append(_png(_ndcg_curves(ndcg_curves, k)))

    doc = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Evaluation: {dataset}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>Offline evaluation: {dataset}</h1>
<p class="meta">protocol: {protocol} &middot; K = {k} &middot; users evaluated: {n_users}</p>
<h2>Metrics @{k}</h2>
{_metrics_table(models, columns)}
{_versus(result, k)}
{_extras_table(result)}
{_tuning_section(result.get("tuning"))}
<h2>Charts</h2>
{"".join(charts)}
</body>
</html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc, encoding="utf-8")
