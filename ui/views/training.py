"""Starting training jobs, following the running one, and the history of recent jobs."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, get_args

import streamlit as st
from pydantic import ValidationError

from shared.schemas.training import (
    DatasetName,
    TrainJobRecord,
    TrainJobStatus,
    TrainRequest,
    parse_event_weights,
)
from shared.training.params import TrainParams
from ui.client import GatewayClient, GatewayError
from ui.settings import UISettings
from ui.views.serving import wait_until_served
from ui.views.tuning import FINISHED_KEY, render_tuning_summary

# Session state survives reruns (any widget interaction), so a job started before is resumed,
# on whichever page the user is: both pages follow the same job.
JOB_KEY = "train_job_id"
OUTCOME_KEY = "train_outcome"
DATASETS: list[DatasetName] = list(get_args(DatasetName))
DATASET_KEY = "train_dataset"
START_KEY = "train_start"
HISTORY_LIMIT = 20
# Where the server looks when no path is given (relative to its data folder).
DEFAULT_PATHS = {
    "online-retail": "online-retail/online_retail.csv.gz",
    "movielens-100k": "movielens-100k",
}
DONE_TEXT = "Training: done (100%)"


def render_retrain(client: GatewayClient, settings: UISettings, user: str) -> None:
    """One button: retrain on the synthetic data with the default recipe."""
    show_outcome()
    running = JOB_KEY in st.session_state
    if st.button("Retrain", disabled=running, help="Train a new model on the synthetic dataset"):
        st.session_state[JOB_KEY] = client.train("synthetic")
        st.session_state.pop(FINISHED_KEY, None)
    follow_job(client, settings, user)


def render_training(client: GatewayClient, settings: UISettings, probe_user: str) -> None:
    """The Training page: options, start, progress of the running job, recent jobs."""
    show_outcome()
    _finished_version(client)
    running = JOB_KEY in st.session_state
    request = _training_form(disabled=running)
    start = st.button(
        "Start training", key=START_KEY, type="primary", disabled=running or request is None
    )
    if start and request is not None:
        try:
            st.session_state[JOB_KEY] = client.train_request(request)
            st.session_state.pop(FINISHED_KEY, None)
        except GatewayError as err:  # 422 on bad options, 401/403 without a key...
            st.error(f"Could not start training: {err.detail}")
    # Reserved above the history, filled last: the polling loop must not hold back the table.
    progress_area = st.container()
    render_history(client)
    with progress_area:
        follow_job(client, settings, probe_user)


def _finished_version(client: GatewayClient) -> None:
    """How the recipe of the version the last job produced was chosen, in short."""
    version: int | None = st.session_state.get(FINISHED_KEY)
    if version is None:
        return
    try:
        detail = client.model(version)
    except GatewayError as err:  # e.g. 404: retention deleted it meanwhile
        st.caption(f"Could not read version {version}: HTTP {err.status_code}: {err.detail}")
        return
    with st.container(border=True):
        st.markdown(f"**How version {version}'s recipe was chosen**")
        render_tuning_summary(detail)


def _training_form(disabled: bool) -> TrainRequest | None:
    """The options of POST /train; None (with the reason shown) if they do not validate."""
    dataset: DatasetName = st.selectbox(
        "Dataset",
        DATASETS,
        key=DATASET_KEY,
        disabled=disabled,
        help="What to train on",
    )
    body: dict[str, Any] = {"dataset": dataset}
    if dataset == "synthetic":
        defaults = TrainParams()
        users, products, days = st.columns(3)
        body["params"] = {
            "n_users": users.number_input(
                "Users", 10, 200_000, defaults.n_users, 100, key="train_n_users", disabled=disabled
            ),
            "n_products": products.number_input(
                "Products",
                10,
                100_000,
                defaults.n_products,
                50,
                key="train_n_products",
                disabled=disabled,
            ),
            "n_days": days.number_input(
                "Days of history",
                30,
                3650,
                defaults.n_days,
                30,
                key="train_n_days",
                disabled=disabled,
            ),
        }
    else:
        path = st.text_input(
            "Data path (relative to the server's data folder)",
            placeholder=DEFAULT_PATHS.get(dataset, "e.g. my-shop/interactions.csv"),
            key="train_data_path",
            disabled=disabled,
            help="Empty: the dataset's usual place, where there is one.",
        ).strip()
        if path:
            body["data_path"] = path
    if dataset == "csv":
        header = st.checkbox(
            "Line 1 names the columns",
            value=True,
            key="train_csv_header",
            disabled=disabled,
            help="Unticked: line 1 is data, and columns are named by position: 1, 2, 3 ... "
            "(the item table's too, where its line 1 is an item).",
        )
        user_col, item_col, rating_col, time_col = st.columns(4)
        csv = {
            "user_col": user_col.text_input(
                "User column", "user_id", key="train_user_col", disabled=disabled
            ),
            "item_col": item_col.text_input(
                "Item column", "product_id", key="train_item_col", disabled=disabled
            ),
            "rating_col": rating_col.text_input(
                "Rating column (optional)", key="train_rating_col", disabled=disabled
            ),
            "time_col": time_col.text_input(
                "Time column (optional)", key="train_time_col", disabled=disabled
            ),
        }
        # What the shop knows about items and users, from columns of the events file or an
        # item table: the ranker's price, category and segment features read them.
        for field, label, where in zip(
            ("title_col", "category_col", "price_col", "segment_col"),
            ("Title column", "Category column", "Price column", "User segment column"),
            st.columns(4),
            strict=True,
        ):
            csv[field] = where.text_input(
                f"{label} (optional)", key=f"train_{field}", disabled=disabled
            )
        event_col, event_weights = st.columns([1, 3])
        csv["event_col"] = event_col.text_input(
            "Event type column (optional)",
            key="train_event_col",
            disabled=disabled,
            help="view, add_to_cart, purchase ...: each row weighs as much as its type.",
        )
        weights = event_weights.text_input(
            "Event weights (optional)",
            key="train_event_weights",
            disabled=disabled,
            placeholder="view=1, addtocart=3, transaction=5",
            help="Empty: the weights live events get (RECSYS_EVENT_WEIGHTS).",
        )
        csv["items_path"] = st.text_input(
            "Item table (optional, relative to the data folder)",
            key="train_items_path",
            disabled=disabled,
            help="A CSV with the item column and any of title, category, price.",
        )
        body["csv"] = {k: v.strip() for k, v in csv.items() if v.strip()}
        if not header:
            body["csv"]["header"] = False
        if weights.strip():
            try:
                body["csv"]["event_weights"] = parse_event_weights(weights)
            except ValueError as err:
                st.error(f"Event weights: {err}")
                return None
    if recipe := _recipe_inputs(disabled):
        body["params"] = {**body.get("params", {}), **recipe}
    if st.checkbox(
        "Merge the events received through POST /events",
        key="train_include_events",
        disabled=disabled,
        help="Events carry the time they happened: they belong to your shop's own timeline.",
    ):
        body["include_events"] = True
    try:
        return TrainRequest.model_validate(body)
    except ValidationError as err:
        st.error("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()))
        return None


# The model recipe's main knobs: TrainParams field -> label, step, help (bounds and defaults
# come from TrainParams itself, so the form cannot disagree with what the API accepts).
RECIPE: dict[str, tuple[str, float, str]] = {
    "ranker_models": ("Averaged rankers", 1, "LightGBM rankers averaged; fewer train faster."),
    "graph_lowrank": (
        "Low-rank filter dimensions",
        8,
        "Stage one's low-pass filter of the interactions; 0 turns it off.",
    ),
    "ranker_prior_weight": (
        "Ranker prior weight",
        0.5,
        "The ranker's trees start from this times stage one's score; 0: from zero.",
    ),
    "graph_session_minutes": (
        "Session gap (minutes)",
        1,
        "Items a user took in one session (no longer gap between them) count more in stage "
        "one's graph; 0 turns it off. Helps rating sites' sittings, not shops' baskets.",
    ),
    "tune_budget_seconds": (
        "Tuning budget (s)",
        30,
        "Seconds training may spend choosing the recipe (Optuna) on validation splits carved "
        "from the training data, never the held-out test split; 0 = the fixed defaults, no "
        "search.",
    ),
}


def _recipe_inputs(disabled: bool) -> dict[str, float]:
    """The recipe knobs, starting from TrainParams' defaults, the same for every dataset; only
    the values changed from those are sent, so the server's defaults (docs/decisions.md says how
    they were chosen) stay the reference."""
    defaults = TrainParams()
    schema = TrainParams.model_json_schema()["properties"]
    changed = {}
    with st.expander("Recipe"):
        columns = st.columns(len(RECIPE))
        for column, (field, (label, step, text)) in zip(columns, RECIPE.items(), strict=True):
            default = getattr(defaults, field)
            kind = type(default)  # an int field takes int bounds, so its widget answers ints
            value = column.number_input(
                label,
                kind(schema[field]["minimum"]),
                kind(schema[field]["maximum"]),
                default,
                kind(step),
                key=f"train_{field}",
                disabled=disabled,
                help=text,
            )
            if value != default:
                changed[field] = value
    return changed


def render_history(client: GatewayClient) -> None:
    st.subheader("Recent jobs")
    jobs = client.jobs(HISTORY_LIMIT).jobs
    if not jobs:
        st.caption("No training jobs yet.")
        return
    now = datetime.now(UTC)
    # st.table rather than st.dataframe: its cells are real page text (searchable, testable).
    st.table([history_row(job, now) for job in jobs], hide_index=True)
    st.caption("Duration counts from submission, so it includes time spent in the queue.")


def history_row(job: TrainJobRecord, now: datetime) -> dict[str, str]:
    end = job.finished_at or now
    duration = _duration((end - job.submitted_at).total_seconds())
    if job.finished_at is None:
        duration += " so far"
    return {
        "submitted (UTC)": job.submitted_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "job": job.job_id[:8],
        "dataset": job.dataset or "—",
        "state": _state(job),
        "duration": duration,
        "result": _result(job),
    }


def _duration(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _state(job: TrainJobStatus) -> str:
    if job.state == "SUCCESS":
        return "done"
    if job.state == "FAILURE":
        return "failed"
    if job.state == "PENDING":
        return "queued"
    return f"{job.stage or 'running'} ({job.progress:.0%})"


def _result(job: TrainJobStatus) -> str:
    if job.state == "FAILURE":
        return f"error: {job.error or 'no error message'}"
    if job.state != "SUCCESS":
        return "—"
    if job.model_version is None:
        return "no model version"
    served = "served" if job.promoted else "not promoted"
    result = f"version {job.model_version}, {served}"
    return f"{result}: {job.reason}" if job.reason else result


def show_outcome() -> None:
    """The outcome of the job that just ended (set before the page reran), once."""
    outcome: tuple[bool, str] | None = st.session_state.pop(OUTCOME_KEY, None)
    if outcome is None:
        return
    ok, text = outcome
    if ok:
        st.progress(1.0, text=DONE_TEXT)
        st.success(text)
    else:
        st.error(text)


def follow_job(client: GatewayClient, settings: UISettings, user: str) -> None:
    """Poll the running job (if any) until it ends, then rerun the page to show its model."""
    job_id: str | None = st.session_state.get(JOB_KEY)
    if job_id is None:
        return
    bar = st.progress(0.0, text="Queued…")
    try:
        while True:
            job = client.job(job_id)
            bar.progress(job.progress, text=_label(job))
            if job.state in ("SUCCESS", "FAILURE"):
                break
            time.sleep(settings.poll_seconds)
    except GatewayError as err:  # e.g. 404 once the job's result expired: stop following it
        del st.session_state[JOB_KEY]
        bar.empty()
        st.error(f"Lost track of training job {job_id}: {err.detail}")
        return
    # GatewayUnavailable propagates on purpose: the job id stays, and polling resumes on rerun.
    st.session_state[FINISHED_KEY] = job.model_version if job.state == "SUCCESS" else None
    if job.state == "SUCCESS" and job.promoted is not False and job.model_version is not None:
        bar.progress(1.0, text=f"Waiting for the services to load version {job.model_version}…")
        wait_until_served(client, settings, user, job.model_version)
    del st.session_state[JOB_KEY]
    st.session_state[OUTCOME_KEY] = _outcome(job)
    st.rerun()


def _label(job: TrainJobStatus) -> str:
    stage = job.stage or job.state.lower()
    return f"Training: {stage} ({job.progress:.0%})"


def _outcome(job: TrainJobStatus) -> tuple[bool, str]:
    if job.state == "FAILURE":
        return False, f"Training failed: {job.error or 'no error message'}"
    if job.model_version is None:
        return False, "Training finished without producing a model version."
    if job.promoted is False:
        return (
            True,
            f"Model version {job.model_version} was trained but not promoted; "
            "the previous model is still served.",
        )
    return True, f"Model version {job.model_version} is now served."
