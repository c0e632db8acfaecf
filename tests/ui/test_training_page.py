"""The Training page through AppTest: the form, a job followed to its end, the job history."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from shared.schemas.training import TrainJobRecord, TrainRequest
from shared.training.params import TrainParams
from tests.conftest import SMALL_TRAIN, wait_for_version
from tests.ui.conftest import TUNING, FakeGateway, Reply, fake_gateway, model_detail, reply
from ui.views.training import DATASET_KEY, DATASETS, DONE_TEXT, RECIPE, START_KEY, history_row

APP = Path(__file__).resolve().parents[2] / "ui" / "app.py"
PAGE = "app_pages/training.py"

_DONE = {
    "job_id": "aaaaaaaa-1111",
    "state": "SUCCESS",
    "progress": 1.0,
    "stage": "done",
    "model_version": 2,
    "promoted": True,
    "reason": "first model",
    "submitted_at": "2024-05-01T10:00:00Z",
    "finished_at": "2024-05-01T10:01:05Z",
    "dataset": "synthetic",
}
_FAILED = {
    "job_id": "bbbbbbbb-2222",
    "state": "FAILURE",
    "progress": 1.0,
    "error": "no user took a candidate item in the ranker's training window",
    "submitted_at": "2024-05-01T11:00:00Z",
    "finished_at": "2024-05-01T11:00:09Z",
    "dataset": "csv",
}


def _start(gateway: FakeGateway, raw: bytes) -> Reply:
    return 202, {"job_id": "cccccccc-3333"}


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGateway]:
    status = {k: v for k, v in _DONE.items() if k not in ("submitted_at", "finished_at", "dataset")}
    new_job = {**status, "job_id": "cccccccc-3333", "model_version": 4, "reason": "better"}
    fake = FakeGateway(
        {
            ("GET", "/train"): reply({"jobs": [_FAILED, _DONE]}),
            ("POST", "/train"): _start,
            ("GET", "/train/cccccccc-3333"): reply(new_job),
            ("GET", "/models/4"): reply(model_detail(4, current=True, tuning=TUNING)),
            # wait_until_served probes the gateway until it answers with the new version
            ("GET", "/recommend"): reply([], headers={"X-Model-Version": "4"}),
        }
    )
    with fake_gateway(fake) as url:
        monkeypatch.setenv("UI_GATEWAY_URL", url)
        monkeypatch.setenv("UI_POLL_SECONDS", "0.1")
        yield fake


def _open(timeout: float = 30) -> AppTest:
    return AppTest.from_file(APP, default_timeout=timeout).run().switch_page(PAGE).run()


def _history(at: AppTest) -> list[dict[str, Any]]:
    tables = [t.value for t in at.table if "submitted (UTC)" in t.value.columns]
    assert len(tables) == 1
    return [{str(k): v for k, v in row.items()} for row in tables[0].to_dict("records")]


def test_history_lists_jobs_with_duration_and_result(gateway: FakeGateway) -> None:
    at = _open()

    assert not at.exception
    assert _history(at) == [
        {
            "submitted (UTC)": "2024-05-01 11:00:00",
            "job": "bbbbbbbb",
            "dataset": "csv",
            "state": "failed",
            "duration": "9 s",
            "result": "error: no user took a candidate item in the ranker's training window",
        },
        {
            "submitted (UTC)": "2024-05-01 10:00:00",
            "job": "aaaaaaaa",
            "dataset": "synthetic",
            "state": "done",
            "duration": "1 min 05 s",
            "result": "version 2, served: first model",
        },
    ]


def test_running_job_row_counts_time_so_far() -> None:
    job = TrainJobRecord(
        job_id="dddddddd-4444",
        state="PROGRESS",
        progress=0.6,
        stage="ranker",
        submitted_at=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    )
    row = history_row(job, now=datetime(2024, 5, 1, 13, 2, 30, tzinfo=UTC))
    assert row["state"] == "ranker (60%)"
    assert row["duration"] == "1 h 02 min so far"
    assert row["dataset"] == "—" and row["result"] == "—"


def test_form_follows_the_dataset(gateway: FakeGateway) -> None:
    at = _open()
    recipe = {
        "train_ranker_models",
        "train_graph_lowrank",
        "train_ranker_prior_weight",
        "train_graph_session_minutes",
        "train_tune_budget_seconds",
    }
    assert {n.key for n in at.number_input} == {
        "train_n_users",
        "train_n_products",
        "train_n_days",
        *recipe,
    }
    assert not at.text_input

    at.selectbox(key=DATASET_KEY).select("online-retail").run()
    assert {n.key for n in at.number_input} == recipe  # the recipe applies to every dataset
    lowrank = at.number_input(key="train_graph_lowrank")  # TrainParams' own bounds and default
    assert (lowrank.min, lowrank.max, lowrank.value) == (0, 256, 32)
    assert at.text_input(key="train_data_path").placeholder == "online-retail/online_retail.csv.gz"

    at.selectbox(key=DATASET_KEY).select("csv").run()
    assert at.text_input(key="train_user_col").value == "user_id"
    # The same column twice does not validate: said at once, and nothing can be started.
    at.text_input(key="train_item_col").input("user_id").run()
    assert not at.exception
    assert any("columns must differ" in e.value for e in at.error), [e.value for e in at.error]
    assert at.button(key=START_KEY).disabled
    assert gateway.paths("POST") == []
    # Item and user attributes: optional columns, one role each.
    at.text_input(key="train_item_col").input("sku").run()
    at.text_input(key="train_price_col").input("unit_price").run()
    at.text_input(key="train_segment_col").input("sku").run()
    assert any("one role" in e.value for e in at.error), [e.value for e in at.error]
    assert at.button(key=START_KEY).disabled
    at.text_input(key="train_segment_col").input("country").run()
    assert not at.error and not at.button(key=START_KEY).disabled
    # Event types: weights as people type them; a pair that is not TYPE=WEIGHT is said at once.
    at.text_input(key="train_event_col").input("event").run()
    at.text_input(key="train_event_weights").input("view=1, addtocart").run()
    assert any("expected TYPE=WEIGHT" in e.value for e in at.error), [e.value for e in at.error]
    assert at.button(key=START_KEY).disabled
    at.text_input(key="train_event_weights").input("view=1, addtocart=3").run()
    at.text_input(key="train_data_path").input("shop/events.csv").run()
    assert not at.error and not at.button(key=START_KEY).disabled
    at.button(key=START_KEY).click().run()
    posted = [body for method, _, body in gateway.requests if method == "POST"]
    sent = TrainRequest.model_validate(posted[-1]).csv
    assert sent is not None and sent.event_col == "event"
    assert sent.event_weights == {"view": 1.0, "addtocart": 3.0}
    assert sent.header and "header" not in str(posted[-1])
    # A file without a header line: its columns are named by position.
    at.checkbox(key="train_csv_header").uncheck().run()
    for key, value in (("train_user_col", "1"), ("train_item_col", "2")):
        at.text_input(key=key).input(value).run()
    for key in ("train_price_col", "train_segment_col", "train_event_col", "train_event_weights"):
        at.text_input(key=key).input("").run()
    assert not at.error and not at.button(key=START_KEY).disabled
    at.button(key=START_KEY).click().run()
    posted = [body for method, _, body in gateway.requests if method == "POST"]
    sent = TrainRequest.model_validate(posted[-1]).csv
    assert sent is not None and sent.model_dump(exclude_unset=True) == {
        "header": False,
        "user_col": "1",
        "item_col": "2",
    }


def test_start_follows_the_job_to_its_end(gateway: FakeGateway) -> None:
    at = _open()
    at.number_input(key="train_n_users").set_value(300).run()
    at.checkbox(key="train_include_events").check().run()

    at.button(key=START_KEY).click().run()

    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    posted = [body for method, path, body in gateway.requests if method == "POST"]
    assert posted == [
        {
            "dataset": "synthetic",
            "params": {"n_users": 300, "n_products": 300, "n_days": 120},
            "include_events": True,
        }
    ]
    assert [s.value for s in at.success] == ["Model version 4 is now served."]
    bars = at.get("progress")
    assert [(b.proto.value, b.proto.text) for b in bars] == [(100, DONE_TEXT)]
    assert not at.button(key=START_KEY).disabled  # no job running any more
    # The new version's recipe search, in short, and where to see its trials.
    assert "**How version 4's recipe was chosen**" in [m.value for m in at.markdown]
    decision = [m.value for m in at.markdown if str(m.value).startswith("**Served pipeline:**")]
    assert decision == [
        "**Served pipeline:** two-stage: stage one's candidates reordered by the ranker  \n"
        "the ranker beats stage one alone on validation (0.3102 vs 0.2950)"
    ]
    assert {m.label: m.value for m in at.metric} == {
        "Trials": "5",
        "Best validation NDCG@10": "0.3102",
        "Search time": "42 s of 60 s",
    }
    links = at.get("page_link")
    assert [(link.proto.label, link.proto.page) for link in links] == [
        ("Version 4's trials, validation scores and chosen knobs: Models", "models")
    ]
    assert all("trial" not in t.value.columns for t in at.table)  # the trials: Models page

    # It stays while the page is used, and goes when the next job starts.
    at.number_input(key="train_n_users").set_value(400).run()
    assert "**How version 4's recipe was chosen**" in [m.value for m in at.markdown]
    gateway.routes[("GET", "/train/cccccccc-3333")] = reply(
        {"job_id": "cccccccc-3333", "state": "FAILURE", "progress": 1.0, "error": "out of memory"}
    )
    at.button(key=START_KEY).click().run()
    assert [e.value for e in at.error] == ["Training failed: out of memory"]
    assert not at.metric and not at.get("page_link")


def test_changed_recipe_knobs_are_sent_with_the_job(gateway: FakeGateway) -> None:
    at = _open()
    at.selectbox(key=DATASET_KEY).select("online-retail").run()
    at.number_input(key="train_ranker_models").set_value(1).run()
    at.number_input(key="train_graph_lowrank").set_value(0).run()
    at.number_input(key="train_ranker_prior_weight").set_value(2.5).run()
    at.number_input(key="train_graph_session_minutes").set_value(1.0).run()
    at.number_input(key="train_tune_budget_seconds").set_value(0.0).run()

    at.button(key=START_KEY).click().run()

    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    posted = [body for method, path, body in gateway.requests if method == "POST"]
    assert posted == [
        {
            "dataset": "online-retail",
            "params": {  # just what was changed: no dataset's own choices are added
                "ranker_models": 1,
                "graph_lowrank": 0,
                "ranker_prior_weight": 2.5,
                "graph_session_minutes": 1.0,
                "tune_budget_seconds": 0.0,
            },
        }
    ]


def test_refused_job_is_a_message_not_a_crash(gateway: FakeGateway) -> None:
    gateway.routes[("POST", "/train")] = reply({"detail": "data_path must stay inside"}, 422)
    at = _open()
    at.selectbox(key=DATASET_KEY).select("movielens-100k").run()
    at.text_input(key="train_data_path").input("../../etc").run()

    at.button(key=START_KEY).click().run()

    assert not at.exception
    assert [e.value for e in at.error] == ["Could not start training: data_path must stay inside"]
    assert not at.get("progress")


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_train_from_the_page_against_live_gateway(
    monkeypatch: pytest.MonkeyPatch, live_gateway_url: str
) -> None:
    monkeypatch.setenv("UI_GATEWAY_URL", live_gateway_url)
    monkeypatch.setenv("UI_POLL_SECONDS", "0.5")
    original = httpx.get(f"{live_gateway_url}/models", timeout=10).json()["current"]
    try:
        at = _open(timeout=60)
        params: dict[str, int] = SMALL_TRAIN["params"]  # type: ignore[assignment]
        at.number_input(key="train_n_users").set_value(params["n_users"]).run()
        at.number_input(key="train_n_products").set_value(params["n_products"]).run()
        at.number_input(key="train_n_days").set_value(params["n_days"]).run()

        at.button(key=START_KEY).click().run(timeout=480)

        assert not at.exception
        assert not at.error, [e.value for e in at.error]
        done = [s.value for s in at.success]
        assert len(done) == 1 and done[0].startswith("Model version "), done
        newest = _history(at)[0]
        assert newest["state"] == "done" and newest["dataset"] == "synthetic"
        assert newest["result"].startswith(f"version {done[0].split()[2]}, ")
    finally:
        httpx.post(f"{live_gateway_url}/models/{original}/activate", timeout=10)
        wait_for_version(live_gateway_url, original)


def test_every_dataset_starts_from_trainparams_defaults(gateway: FakeGateway) -> None:
    defaults = TrainParams()
    at = _open()
    for dataset in DATASETS:
        at.selectbox(key=DATASET_KEY).select(dataset).run()
        knobs = {field: at.number_input(key=f"train_{field}").value for field in RECIPE}
        assert knobs == {field: getattr(defaults, field) for field in RECIPE}, dataset
    budget = at.number_input(key="train_tune_budget_seconds")
    assert (budget.min, budget.max, budget.value) == (0.0, 86_400.0, 180.0)  # TrainParams' own
    assert budget.label == "Tuning budget (s)"
    assert "0 = the fixed defaults" in budget.help and "validation splits" in budget.help

    # Nothing changed: no params at all, the server's defaults (and its search) apply.
    at.selectbox(key=DATASET_KEY).select("movielens-100k").run()
    at.button(key=START_KEY).click().run()
    # The budget alone: only it is sent.
    at = _open()
    at.selectbox(key=DATASET_KEY).select("movielens-100k").run()
    at.number_input(key="train_tune_budget_seconds").set_value(600.0).run()
    at.button(key=START_KEY).click().run()

    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    posted = [body for method, path, body in gateway.requests if method == "POST"]
    assert posted == [
        {"dataset": "movielens-100k"},
        {"dataset": "movielens-100k", "params": {"tune_budget_seconds": 600.0}},
    ]


def test_changed_knob_is_kept_when_the_dataset_changes(gateway: FakeGateway) -> None:
    # The defaults are the same for every dataset: switching does not undo a choice.
    at = _open()
    at.number_input(key="train_tune_budget_seconds").set_value(0.0).run()
    at.selectbox(key=DATASET_KEY).select("online-retail").run()
    assert at.number_input(key="train_tune_budget_seconds").value == 0.0

    at.button(key=START_KEY).click().run()

    last = [body for method, path, body in gateway.requests if method == "POST"][-1]
    assert last == {"dataset": "online-retail", "params": {"tune_budget_seconds": 0.0}}
