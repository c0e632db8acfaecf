"""The Experiments page's start form: arms from the registry's versions, shares, the primary
metric and the guardrails (the API's defaults), posted as POST /experiments."""

from __future__ import annotations

import streamlit as st
from pydantic import ValidationError

from shared.schemas.experiments import Experiment, ExperimentIn, Guardrails, PrimaryMetric
from shared.schemas.models import ModelsResponse
from ui.client import GatewayClient, GatewayError
from ui.views.experiment_text import (
    CONTROL_ARM,
    FOCUS_KEY,
    METRIC_HELP,
    METRIC_TITLES,
    METRICS,
    OUTCOME_KEY,
    fraction,
    http_error,
    percent,
    refusal,
)

NAME_KEY = "exp_name"
CONTROL_KEY = "exp_control"
TREATMENTS_KEY = "exp_treatments"
METRIC_KEY = "exp_metric"
MAX_DEGRADED_KEY = "exp_max_degraded"
MAX_P99_KEY = "exp_max_p99"
MAX_DROP_KEY = "exp_max_drop"
MIN_LISTS_KEY = "exp_min_lists"
START_KEY = "exp_start"


def share_key(n_arms: int, i: int) -> str:
    """The share input of arm `i` (0: the control) when the form has `n_arms` arms; another
    number of arms starts from an equal split again."""
    return f"exp_share_{n_arms}_{i}"


def render_start(client: GatewayClient, running: Experiment | None) -> None:
    st.subheader("Start an experiment")
    if running is not None:
        st.caption(
            f"{running.name} is running: the gateway runs one experiment at a time, so stop or "
            "promote it first."
        )
    try:
        models = client.models()
    except GatewayError as err:
        st.warning(f"Could not read the model versions: {http_error(err)}")
        return
    if not models.versions:
        st.info("No model versions yet: train one on the Training page.")
        return
    request = _experiment_form(models)
    if st.button("Start experiment", key=START_KEY, type="primary", disabled=request is None):
        if request is None:  # a disabled button is not clicked; keeps the types honest
            return
        try:
            with st.spinner("Starting: the services load every arm's version first…"):
                created = client.create_experiment(request)
        except GatewayError as err:  # 409 another runs or the name is taken, 422, 401/403...
            st.error(f"Could not start experiment {request.name}: {refusal(err)}")
            return
        arms = ", ".join(f"{a.name} (version {a.version}, {a.share:.0%})" for a in created.arms)
        st.session_state[OUTCOME_KEY] = ("success", f"Experiment {created.name} started: {arms}.")
        st.session_state[FOCUS_KEY] = created.name
        st.rerun()


def equal_split(n: int) -> list[float]:
    """`n` shares in percent with two decimals that add up to exactly 100 (the control, first,
    takes what rounding leaves)."""
    each = 10_000 // n
    return [(10_000 - each * (n - 1)) / 100, *[each / 100] * (n - 1)]


def _experiment_form(models: ModelsResponse) -> ExperimentIn | None:
    """The body of POST /experiments; None (with the reason shown) while it would be refused."""
    versions = sorted((m.version for m in models.versions), reverse=True)

    def describe(v: int) -> str:
        return f"{v} (current)" if v == models.current else str(v)

    name = st.text_input(
        "Name",
        key=NAME_KEY,
        max_chars=64,
        placeholder="e.g. ranker-v7",
        help="Letters, digits, _ . - (starting with a letter or digit); never reused.",
    ).strip()
    left, right = st.columns(2)
    control: int = left.selectbox(
        "Control version",
        versions,
        index=versions.index(models.current) if models.current in versions else 0,
        key=CONTROL_KEY,
        format_func=describe,
        help="The first arm, named control: every other arm is compared with it.",
    )
    others = [v for v in versions if v != models.current]
    treatments: list[int] = right.multiselect(
        "Treatment versions",
        versions,
        default=others[:1],
        key=TREATMENTS_KEY,
        format_func=describe,
        max_selections=9,
        help="One arm each, named v<version>; the control's own version makes an A/A test.",
    )
    arms = [(CONTROL_ARM, control), *[(f"v{v}", v) for v in sorted(treatments)]]
    st.caption("Share of the users per arm (%)")
    columns = st.columns(max(len(arms), 4))
    shares = [
        column.number_input(
            f"{arm} · version {version}",
            min_value=0.0,
            max_value=100.0,
            value=default,
            step=5.0,
            format="%.2f",
            key=share_key(len(arms), i),
        )
        for i, (column, (arm, version), default) in enumerate(
            zip(columns, arms, equal_split(len(arms)), strict=False)
        )
    ]
    metric: PrimaryMetric = st.selectbox(
        "Primary metric",
        METRICS,
        index=METRICS.index(ExperimentIn.model_fields["primary_metric"].default),
        key=METRIC_KEY,
        format_func=lambda m: f"{METRIC_TITLES[m]}: {METRIC_HELP[m]}",
        help="What the verdict compares between the arms.",
    )
    guardrails = _guardrail_inputs()
    if not name:
        st.caption("Name the experiment to start it.")
        return None
    if len(arms) < 2:
        st.caption("Choose at least one treatment version.")
        return None
    if abs(sum(shares) - 100) > 1e-6:
        st.error(f"The shares add up to {sum(shares):.2f} %, not 100 %.")
        return None
    body = {
        "name": name,
        "arms": [
            {"name": arm, "version": version, "share": round(share / 100, 6)}
            for (arm, version), share in zip(arms, shares, strict=True)
        ],
        "primary_metric": metric,
        "guardrails": guardrails,
    }
    try:
        return ExperimentIn.model_validate(body)
    except ValidationError as err:
        st.error("; ".join(_problem(e["loc"], e["msg"]) for e in err.errors()))
        return None


def _guardrail_inputs() -> dict[str, float | int | None]:
    """Guardrails as the API takes them, starting from its defaults; an empty field is off."""
    defaults = Guardrails()
    with st.expander("Guardrails: a breach stops the experiment by itself"):
        degraded, p99, drop, min_lists = st.columns(4)
        max_degraded = degraded.number_input(
            "Max degraded answers (%)",
            min_value=0.0,
            max_value=100.0,
            value=percent(defaults.max_degraded_rate),
            step=1.0,
            key=MAX_DEGRADED_KEY,
            help="Of an arm's answers, those served degraded (a stage missing). Empty: off.",
        )
        max_p99 = p99.number_input(
            "Max p99 (ms)",
            min_value=1.0,
            value=defaults.max_p99_ms,
            step=10.0,
            key=MAX_P99_KEY,
            help="Of the arm's last 1,000 answers, gateway time. Empty: off.",
        )
        max_drop = drop.number_input(
            "Max drop of the primary metric (%)",
            min_value=0.0,
            max_value=100.0,
            value=percent(defaults.max_primary_drop),
            step=5.0,
            key=MAX_DROP_KEY,
            help="Stop when the arm's primary metric is, with the test's confidence, lower than "
            "the control's by more than this share of the control's. Empty: off.",
        )
        judged_after = min_lists.number_input(
            "Lists before judging",
            min_value=1,
            max_value=10**9,
            value=defaults.min_lists,
            step=50,
            key=MIN_LISTS_KEY,
            help="Guardrails and the verdict wait until every arm served this many lists.",
        )
    return {
        "max_p99_ms": max_p99,
        "max_degraded_rate": fraction(max_degraded),
        "max_primary_drop": fraction(max_drop),
        "min_lists": int(judged_after),
    }


def _problem(loc: tuple[int | str, ...], msg: str) -> str:
    if loc[:1] == ("name",):
        return "name: letters, digits, _ . - only, starting with a letter or digit"
    where = ".".join(map(str, loc))
    msg = msg.removeprefix("Value error, ")
    return f"{where}: {msg}" if where else msg
