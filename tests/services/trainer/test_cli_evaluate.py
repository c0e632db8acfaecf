"""`recsys evaluate` as users run it: real data from the team folder, JSON as the contract says."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from services.trainer.cli import app, parse_overrides
from shared.datasets import size
from tests.conftest import DATA_DIR

MODELS = {"popularity", "item_knn", "ease", "als", "candidates_only", "two_stage"}


def _check_shape(result: dict[str, object], k: int) -> None:
    assert {"dataset", "protocol", "k", "n_users", "models"} <= result.keys()
    assert result["k"] == k
    models = result["models"]
    assert isinstance(models, dict) and models.keys() >= MODELS
    for metrics in models.values():
        for name in ("precision", "recall", "ndcg", "map", "hit_rate", "coverage"):
            value = metrics[f"{name}@{k}"]
            assert 0.0 <= value <= 1.0
        assert metrics["fit_seconds"] >= 0


def test_evaluate_synthetic_writes_json_and_report(tmp_path: Path) -> None:
    out, report = tmp_path / "eval.json", tmp_path / "report.html"
    r = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--dataset",
            "synthetic",
            "--k",
            "5",
            "--test-days",
            "14",
            "--out",
            str(out),
            "--report",
            str(report),
            "--graph-lowrank",
            "0",
            "--ranker-prior-weight",
            "0.5",
            "--param",
            "graph_session_minutes=30",
            "--param",
            "ranker_models=2",  # after --ranker-models (default 5): the later word wins
            "--param",
            "tune_budget_seconds=8",
        ],
    )
    assert r.exit_code == 0, r.output
    result = json.loads(out.read_text())
    assert result["params"]["graph_lowrank"] == 0  # the recipe is recorded beside its numbers
    assert result["params"]["ranker_prior_weight"] == 0.5
    assert result["params"]["graph_session_minutes"] == 30
    assert result["params"]["ranker_models"] == 2
    assert result["params"]["test_days"] == 14
    # the recipe was searched on validation, around the knobs the command set itself
    tuning = result["tuning"]
    assert tuning["note"] is None and tuning["trials"] and tuning["n_splits"] >= 1
    assert all(t["params"].get("graph_lowrank", 0) == 0 for t in tuning["trials"])
    assert all(t["params"].get("ranker_prior_weight", 0.5) == 0.5 for t in tuning["trials"])
    assert tuning["decision"] in ("two_stage", "stage_one") and "tuning:" in r.output
    for key, value in tuning["chosen"].items():
        assert result["params"][key] == value
    _check_shape(result, 5)
    assert result["protocol"] == "temporal" and result["n_users"] > 100
    m = result["models"]
    assert m["two_stage"]["ndcg@5"] > m["popularity"]["ndcg@5"]
    assert "two_stage" in r.output and "ndcg@5" in r.output
    html = report.read_text()
    assert html.count("data:image/png;base64,") >= 3  # with the recipe search's plot
    assert "How the recipe was chosen" in html
    # where the search's time went, in the JSON, the printed line and the report alike
    phases = tuning["phase_seconds"]
    assert list(phases)[:2] == ["validation splits", "stage-one search"]
    assert sum(phases.values()) == pytest.approx(tuning["spent_seconds"], abs=0.1 * len(phases))
    by_phase = ", ".join(f"{name} {s:.0f} s" for name, s in phases.items())
    assert by_phase in " ".join(r.output.split()) and by_phase in html
    # two_stage against the best baseline, with the spread over users that the ratio carries
    versus = result["versus_best_baseline"]
    baselines = {"popularity", "item_knn", "ease", "als"}
    best = max(baselines, key=lambda name: m[name]["ndcg@5"])
    assert versus["model"] == "two_stage" and versus["baseline"] == best
    ratio = m["two_stage"]["ndcg@5"] / m[best]["ndcg@5"]
    assert versus["ndcg@5_ratio"] == pytest.approx(ratio, rel=1e-9)
    lo, hi = versus["ci95"]
    assert lo <= ratio <= hi and lo < hi
    line = f"two_stage / {best} NDCG@5: {ratio:.3f} x (95 % CI {lo:.3f}-{hi:.3f}"
    assert line in r.output and line in html


@pytest.mark.skipif(not (DATA_DIR / "movielens-100k").is_dir(), reason="team data folder absent")
def test_evaluate_movielens_msr(tmp_path: Path) -> None:
    out = tmp_path / "ml.json"
    r = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--dataset",
            "movielens-100k",
            "--data-path",
            str(DATA_DIR / "movielens-100k"),
            "--protocol",
            "msr",
            "--out",
            str(out),
            "--ranker-models",
            "1",  # the baselines are what is checked here: one ranker is enough, and faster
            "--param",
            "tune_budget_seconds=0",
        ],
    )
    assert r.exit_code == 0, r.output
    result = json.loads(out.read_text())
    _check_shape(result, 10)
    assert result["n_users"] == 943
    m = result["models"]
    # The published reference numbers of this protocol, loosely: EASE ~0.48, popularity ~0.25.
    assert 0.44 < m["ease"]["ndcg@10"] < 0.52
    assert 0.22 < m["popularity"]["ndcg@10"] < 0.28


@pytest.mark.skipif(not (DATA_DIR / "movielens-100k").is_dir(), reason="team data folder absent")
def test_evaluate_a_csv_without_a_header_line(tmp_path: Path) -> None:
    """MovieLens' own u.data through `--dataset csv`: tab-separated, line 1 is data."""
    out = tmp_path / "u.json"
    args = ["evaluate", "--dataset", "csv", "--data-path", str(DATA_DIR / "movielens-100k/u.data")]
    columns = ["--user-col", "1", "--item-col", "2", "--rating-col", "3", "--time-col", "4"]
    quick = ["--protocol", "msr", "--ranker-models", "1", "--param", "tune_budget_seconds=0"]
    r = CliRunner().invoke(app, [*args, "--no-header", *columns, *quick, "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "kept 100,000 of 100,000 rows" in r.output and "separated by tabs" in r.output
    result = json.loads(out.read_text())
    _check_shape(result, 10)
    assert result["n_users"] == 943 and result["n_items"] == 1682


def test_a_log_without_times_says_its_split_is_random(tmp_path: Path) -> None:
    """`temporal` (the default) on a log without a time column: the JSON keeps the protocol
    asked for and names the split used; the table's title names the split used."""
    rng = np.random.default_rng(0)
    rows = [f"u{u},p{p}" for u in range(200) for p in rng.choice(60, 8, replace=False)]
    events = tmp_path / "e.csv"
    events.write_text("\n".join(["user,item", *rows]) + "\n")
    out = tmp_path / "o.json"
    args = ["evaluate", "--dataset", "csv", "--data-path", str(events), "--out", str(out)]
    quick = ["--ranker-models", "1", "--param", "tune_budget_seconds=0"]
    r = CliRunner().invoke(app, [*args, "--user-col", "user", "--item-col", "item", *quick])
    assert r.exit_code == 0, r.output
    result = json.loads(out.read_text())
    assert result["protocol"] == "temporal"
    assert result["split_protocol"] == "temporal-random-fallback"
    assert "csv · temporal-random-fallback · 200 users" in r.output
    assert "csv · temporal · " not in r.output


def test_unusable_file_is_a_clean_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n")
    r = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--dataset",
            "csv",
            "--data-path",
            str(bad),
            "--user-col",
            "user",
            "--item-col",
            "item",
            "--out",
            str(tmp_path / "o.json"),
        ],
    )
    assert r.exit_code == 2
    assert "error" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize(
    ("rows", "says"),
    [
        (["a,p1", "a,p2", "b,p1"], "too little data"),  # loads; no ranker can be fitted on it
        (["a,p1", "b,p1", "c,p1"], "needs at least two"),  # one product: nothing to choose
    ],
)
def test_too_little_data_is_a_clean_error(tmp_path: Path, rows: list[str], says: str) -> None:
    events = tmp_path / "e.csv"
    events.write_text("\n".join(["user,item", *rows]) + "\n")
    out = tmp_path / "o.json"
    args = ["evaluate", "--dataset", "csv", "--data-path", str(events), "--out", str(out)]
    r = CliRunner().invoke(app, [*args, "--user-col", "user", "--item-col", "item"])
    assert r.exit_code == 2, r.output
    assert says in " ".join(r.output.split()) and "Traceback" not in r.output
    assert not out.exists()


def test_a_file_too_big_to_read_is_refused_with_what_it_needs(tmp_path: Path) -> None:
    events = tmp_path / "e.csv"
    events.write_text("user,item\n" + "u,p\n" * 300_000)
    os.truncate(events, 16 * 2**30)  # a hole after the first megabytes: billions of rows' size
    out = tmp_path / "o.json"
    args = ["evaluate", "--dataset", "csv", "--data-path", str(events), "--out", str(out)]
    r = CliRunner().invoke(app, [*args, "--user-col", "user", "--item-col", "item"])
    assert r.exit_code == 2, r.output
    said = " ".join(r.output.split())
    assert "e.csv: ~4,29" in said and "Take a sample first" in said, said
    assert "Traceback" not in r.output and not out.exists()


def test_data_too_big_to_train_on_is_refused_after_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Memory enough to read the file (200 bytes a row) but not to train on it (300 more): the
    # machine's memory is stood in for, the file and the command are real.
    events = tmp_path / "e.csv"
    events.write_text("user,item\n" + "".join(f"u{i % 300},p{i % 70}\n" for i in range(2_000)))
    monkeypatch.setattr(size, "available_bytes", lambda: 500_000)
    out = tmp_path / "o.json"
    args = ["evaluate", "--dataset", "csv", "--data-path", str(events), "--out", str(out)]
    r = CliRunner().invoke(app, [*args, "--user-col", "user", "--item-col", "item"])
    assert r.exit_code == 2, r.output
    said = " ".join(r.output.split())
    assert "kept 2,000 of 2,000 rows" in said  # read, then refused
    assert "csv: 2,000 interactions; training on them needs at least" in said, said
    assert "Traceback" not in r.output and not out.exists()


def test_a_column_with_two_roles_is_refused_before_loading(tmp_path: Path) -> None:
    events = tmp_path / "e.csv"
    events.write_text("user,item,country\nu,p,UK\n")
    out = tmp_path / "o.json"
    args = ["evaluate", "--dataset", "csv", "--data-path", str(events), "--out", str(out)]
    cols = ["--user-col", "user", "--item-col", "item", "--segment-col", "item"]
    r = CliRunner().invoke(app, args + cols)
    assert r.exit_code == 2, r.output
    assert "one role" in r.output and "Traceback" not in r.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (
            ["--event-col", "event", "--event-weights", "view:1"],
            "expected TYPE=WEIGHT, got 'view:1'",
        ),
        (["--event-weights", "view=1"], "event_weights need event_col"),
    ],
)
def test_bad_event_weights_are_refused_before_loading(
    tmp_path: Path, options: list[str], says: str
) -> None:
    events = tmp_path / "e.csv"
    events.write_text("user,item,event\nu,p,view\n")
    out = tmp_path / "o.json"
    args = ["evaluate", "--dataset", "csv", "--data-path", str(events), "--out", str(out)]
    r = CliRunner().invoke(app, [*args, "--user-col", "user", "--item-col", "item", *options])
    assert r.exit_code == 2, r.output
    assert says in " ".join(r.output.split()) and "Traceback" not in r.output
    assert "validation error" not in r.output  # the reason only, not pydantic's whole text
    assert not out.exists()


@pytest.mark.parametrize(
    ("pair", "says"),
    [
        ("graph_session_minutes", "expected KEY=VALUE"),
        ("no_such_knob=1", "no_such_knob"),
        ("graph_session_minutes=-1", "graph_session_minutes"),
        ("ranker_models=many", "ranker_models"),
    ],
)
def test_evaluate_refuses_a_bad_param_before_loading_data(
    tmp_path: Path, pair: str, says: str
) -> None:
    out = tmp_path / "eval.json"
    r = CliRunner().invoke(app, ["evaluate", "--out", str(out), "--param", pair])
    assert r.exit_code == 2, r.output
    assert says in r.output and "Traceback" not in r.output
    assert not out.exists()


def test_params_are_read_as_json_where_they_parse() -> None:
    pairs = ["ranker_models=3", "graded_labels=false", "engine=local", "graph_l2=1e3"]
    assert parse_overrides(pairs) == {
        "ranker_models": 3,
        "graded_labels": False,
        "engine": "local",  # not JSON: kept as text
        "graph_l2": 1000.0,
    }
