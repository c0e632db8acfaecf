"""Retrain button and the progress of the training job it starts."""

from __future__ import annotations

import time

import streamlit as st

from shared.schemas import TrainJobStatus
from ui.client import GatewayClient, GatewayError
from ui.settings import UISettings
from ui.views.serving import wait_until_served

# Session state survives reruns (any widget interaction), so a job started before is resumed.
JOB_KEY = "train_job_id"
OUTCOME_KEY = "train_outcome"


def render_retrain(client: GatewayClient, settings: UISettings, user: str) -> None:
    outcome: tuple[bool, str] | None = st.session_state.pop(OUTCOME_KEY, None)
    if outcome is not None:
        ok, text = outcome
        (st.success if ok else st.error)(text)
    running = JOB_KEY in st.session_state
    if st.button("Retrain", disabled=running, help="Train a new model on the synthetic dataset"):
        st.session_state[JOB_KEY] = client.train("synthetic")
    job_id: str | None = st.session_state.get(JOB_KEY)
    if job_id is not None:
        _follow(client, settings, user, job_id)


def _follow(client: GatewayClient, settings: UISettings, user: str, job_id: str) -> None:
    """Poll the job until it ends, then rerun the page so it shows the model it produced."""
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
