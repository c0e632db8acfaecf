"""A/B experiments: start one, watch its report, stop or promote it, and the ended ones.

Everything goes through the gateway's /experiments routes (docs/api.md, "Experiments (A/B)").
Starting, stopping and promoting are admin calls: without the gateway's admin key the page says
so instead of failing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Literal, get_args

import altair as alt
import pandas as pd
import streamlit as st
from pydantic import ValidationError

from shared.schemas.experiments import (
    ArmReport,
    Experiment,
    ExperimentIn,
    ExperimentReport,
    Guardrails,
    PrimaryMetric,
)
from shared.schemas.models import ModelsResponse
from ui.client import GatewayClient, GatewayError, GatewayUnavailable
from ui.settings import UISettings
from ui.views import status

logger = logging.getLogger("recsys.ui")

# A running experiment's report is read again this often (one GET /experiments/{name}).
REFRESH_SECONDS = 5.0
CONTROL_ARM = "control"
METRICS: list[PrimaryMetric] = list(get_args(PrimaryMetric))
METRIC_TITLES: dict[str, str] = {
    "click_rate": "click rate",
    "add_to_cart_rate": "add-to-cart rate",
    "conversion_rate": "conversion rate",
    "ctr": "CTR",
}
METRIC_HELP: dict[str, str] = {
    "click_rate": "share of the served lists with at least one click",
    "add_to_cart_rate": "share of the served lists with at least one add-to-cart",
    "conversion_rate": "share of the served lists with at least one purchase",
    "ctr": "clicks per item shown",
}
# A guardrail's breach stores a reason starting so (shared/experiments.py, `breached`).
GUARDRAIL_PREFIX = "guardrail "
WINNER_MARK = "★ winner"

# Session state and widget keys.
REPORT_KEY = "exp_report_choice"
FOCUS_KEY = "exp_focus"  # the experiment the report opens on at the next run
OUTCOME_KEY = "exp_outcome"
RERUN_KEY = "exp_rerun_for"  # (experiment, status) the page last reran for
PENDING_KEY = "exp_pending"  # (experiment, "stop" | "promote", reason or arm) awaiting a yes
NAME_KEY = "exp_name"
CONTROL_KEY = "exp_control"
TREATMENTS_KEY = "exp_treatments"
METRIC_KEY = "exp_metric"
MAX_DEGRADED_KEY = "exp_max_degraded"
MAX_P99_KEY = "exp_max_p99"
MAX_DROP_KEY = "exp_max_drop"
MIN_LISTS_KEY = "exp_min_lists"
START_KEY = "exp_start"
STOP_REASON_KEY = "exp_stop_reason"
STOP_KEY = "exp_stop"
PROMOTE_ARM_KEY = "exp_promote_arm"
PROMOTE_KEY = "exp_promote"
CONFIRM_KEY = "exp_confirm"
CANCEL_KEY = "exp_cancel"

Action = Literal["stop", "promote"]
Outcome = tuple[Literal["success", "warning", "error"], str]
_BANNERS = {"success": st.success, "warning": st.warning, "error": st.error}


def share_key(n_arms: int, i: int) -> str:
    """The share input of arm `i` (0: the control) when the form has `n_arms` arms; another
    number of arms starts from an equal split again."""
    return f"exp_share_{n_arms}_{i}"


def render_experiments(client: GatewayClient, settings: UISettings) -> None:
    outcome: Outcome | None = st.session_state.pop(OUTCOME_KEY, None)
    if outcome is not None:
        level, text = outcome
        _BANNERS[level](text)
    experiments = client.experiments()  # oldest first
    running = next((e for e in experiments if e.status == "running"), None)
    st.caption(
        "Users are split between the arms by a hash of their id; each arm's answers come from "
        "its model version end to end. Starting, stopping and promoting need the gateway's "
        "admin key when it has one (UI_ADMIN_API_KEY)."
    )
    _render_report_section(settings, experiments, running)
    _render_start(client, running)
    _render_ended(experiments)


# --- the report ---------------------------------------------------------------------------


def _render_report_section(
    settings: UISettings, experiments: list[Experiment], running: Experiment | None
) -> None:
    st.subheader("Report")
    if not experiments:
        st.info("No experiment yet: start one below.")
        return
    by_name = {e.name: e for e in reversed(experiments)}  # newest first
    names = list(by_name)
    focus: str | None = st.session_state.pop(FOCUS_KEY, None)
    if focus in names:
        st.session_state[REPORT_KEY] = focus
    elif st.session_state.get(REPORT_KEY) not in names:
        st.session_state[REPORT_KEY] = running.name if running is not None else names[0]
    name: str = st.selectbox(
        "Experiment",
        names,
        key=REPORT_KEY,
        format_func=lambda n: f"{n} ({by_name[n].status})",
    )
    _report_panel(settings, name, by_name[name].status)


def _report_panel(settings: UISettings, name: str, seen: str) -> None:
    """The report, read again every REFRESH_SECONDS while the experiment runs."""

    @st.fragment(run_every=REFRESH_SECONDS if seen == "running" else None)
    def panel() -> None:
        # A timed rerun happens outside the page's guard: the panel handles the gateway itself.
        with GatewayClient.from_settings(settings) as client:
            try:
                report = client.experiment(name)
                now = (name, report.experiment.status)
                if now[1] != seen and st.session_state.get(RERUN_KEY) != now:
                    # It ended meanwhile (a guardrail, or someone else): the whole page changes.
                    # Once per change, should the list and the report ever disagree for good.
                    st.session_state[RERUN_KEY] = now
                    st.rerun(scope="app")
                render_report(report)
                if report.experiment.status == "running":
                    _render_actions(client, report)
            except GatewayUnavailable:
                st.error(status.gateway_down_text(settings))
            except GatewayError as err:
                st.error(f"Could not read experiment {name}: {_http(err)}")
            except Exception:
                logger.exception("unexpected error while rendering the experiment's report")
                st.error("Something unexpected went wrong; the details are in the UI's log.")

    panel()


def render_report(report: ExperimentReport) -> None:
    exp = report.experiment
    versions = {a.name: a.version for a in exp.arms}
    _status_banner(exp, versions)
    metric = METRIC_TITLES[exp.primary_metric]
    started = _when(exp.created)
    span = f"started {started}" + (f", ended {_when(exp.ended)}" if exp.ended else "")
    refresh = f" · read again every {REFRESH_SECONDS:.0f} s" if exp.status == "running" else ""
    st.caption(
        f"{span} (UTC) · primary metric: {metric} ({METRIC_HELP[exp.primary_metric]}) · "
        f"guardrails: {_guardrails(exp.guardrails)}{refresh}"
    )
    if report.winner is not None:
        st.success(
            f"Verdict: {report.verdict}. Winner: {report.winner} "
            f"(version {versions.get(report.winner, '?')})."
        )
    else:
        st.info(f"Verdict: {report.verdict}.")
    # st.table rather than st.dataframe: its cells are real page text (searchable, testable).
    st.table([_arm_row(a, metric, report.winner) for a in report.arms], hide_index=True)
    st.caption(
        "vs control: the arm's primary metric minus the control's, in percentage points, with "
        "an always-valid confidence interval (it may be watched continuously); an arm wins "
        "only when the interval leaves out 0. p99: the arm's last 1,000 answers, gateway time."
    )
    _interval_chart(report.arms[1:], metric)
    with st.expander("Every count"):
        st.table([_count_row(a) for a in report.arms], hide_index=True)


def _status_banner(exp: Experiment, versions: dict[str, int]) -> None:
    ended = _when(exp.ended) if exp.ended else "—"
    reason = exp.reason or "no reason given"
    if exp.status == "stopped" and reason.startswith(GUARDRAIL_PREFIX):
        st.error(
            f"**Stopped by a guardrail** at {ended} UTC: {reason}. Everyone is served by the "
            "current version again."
        )
    elif exp.status == "stopped":
        st.warning(f"Stopped at {ended} UTC: {reason}.")
    elif exp.status == "promoted" and exp.promoted is not None:
        st.success(
            f"Promoted at {ended} UTC: arm {exp.promoted} (version "
            f"{versions.get(exp.promoted, '?')}) became the current version."
        )


def _arm_row(arm: ArmReport, metric: str, winner: str | None) -> dict[str, Any]:
    vs = arm.vs_control
    return {
        "arm": arm.name,
        "version": arm.version,
        "share": f"{arm.share:.0%}" if round(arm.share, 2) == arm.share else f"{arm.share:.2%}",
        "lists": arm.lists,
        "items shown": arm.items_shown,
        "degraded": f"{arm.degraded} ({arm.degraded / arm.lists:.1%})" if arm.lists else "0",
        metric: _pct(arm.primary),
        "p99": "—" if arm.p99_ms is None else f"{arm.p99_ms:.1f} ms",
        "vs control": "—" if vs is None else f"{vs.estimate * 100:+.2f} pp",
        "interval": "—" if vs is None else f"[{vs.low * 100:+.2f}, {vs.high * 100:+.2f}] pp",
        "": WINNER_MARK if arm.name == winner else "",
    }


def _count_row(arm: ArmReport) -> dict[str, Any]:
    return {
        "arm": arm.name,
        "clicks": arm.clicks,
        "add to cart": arm.add_to_cart,
        "purchases": arm.purchases,
        "revenue": f"{arm.revenue:.2f}",
        "lists clicked": arm.lists_clicked,
        "lists with add-to-cart": arm.lists_with_cart,
        "lists converted": arm.lists_converted,
    }


def _interval_chart(treatments: list[ArmReport], metric: str) -> None:
    """Each treatment's difference from the control (a point) and its interval (a bar), with the
    line at 0: an arm wins when its bar stays off that line."""
    compared = [(a.name, a.vs_control) for a in treatments if a.vs_control is not None]
    if not compared:
        return
    frame = pd.DataFrame(
        {
            "arm": [name for name, _ in compared],
            "difference": [round(d.estimate * 100, 4) for _, d in compared],
            "low": [round(d.low * 100, 4) for _, d in compared],
            "high": [round(d.high * 100, 4) for _, d in compared],
        }
    )
    # The axis always shows 0, with a margin on both sides so that the line at 0 is seen.
    left, right = min(0.0, float(frame["low"].min())), max(0.0, float(frame["high"].max()))
    margin = (right - left) * 0.1 or 1.0
    title = f"{metric} minus the control's (pp)"
    x = alt.X("low:Q", title=title, scale=alt.Scale(domain=[left - margin, right + margin]))
    y = alt.Y("arm:N", title=None, sort=None)
    base = alt.Chart(frame, height=60 + 40 * len(compared))
    interval = base.mark_rule(strokeWidth=3).encode(
        x=x, x2="high:Q", y=y, tooltip=["arm", "low", "high"]
    )
    point = base.mark_point(filled=True, size=80).encode(
        x="difference:Q", y=y, tooltip=["arm", "difference"]
    )
    zero = base.mark_rule(strokeDash=[4, 4], color="gray").encode(x=alt.datum(0))
    st.altair_chart(alt.layer(interval, point, zero), width="stretch")


# --- stop and promote ---------------------------------------------------------------------


def _render_actions(client: GatewayClient, report: ExperimentReport) -> None:
    exp = report.experiment
    stop, promote = st.columns(2)
    with stop:
        reason = st.text_input(
            "Reason to stop (optional)",
            key=STOP_REASON_KEY,
            max_chars=500,
            placeholder="stopped by hand",
        ).strip()
        if st.button(
            "Stop",
            key=STOP_KEY,
            help="Everyone goes back to the current version; it cannot "
            "be restarted (names are never reused).",
        ):
            st.session_state[PENDING_KEY] = (exp.name, "stop", reason or None)
    with promote:
        arms = [a.name for a in exp.arms]
        arm: str | None = st.selectbox(
            "Arm to promote",
            arms,
            index=arms.index(report.winner) if report.winner in arms else None,
            key=PROMOTE_ARM_KEY,
            placeholder="no winner yet: pick an arm",
            format_func=lambda a: f"{a} (winner)" if a == report.winner else a,
        )
        if st.button(
            "Promote",
            key=PROMOTE_KEY,
            disabled=arm is None,
            help="Its version becomes the current one for everyone; the experiment ends.",
        ):
            st.session_state[PENDING_KEY] = (exp.name, "promote", arm)
    pending: tuple[str, Action, str | None] | None = st.session_state.get(PENDING_KEY)
    if pending is None:
        return
    name, action, value = pending
    if name != exp.name or (action == "promote" and value != arm):
        del st.session_state[PENDING_KEY]  # another experiment, or the pick changed: ask again
        return
    versions = {a.name: a.version for a in exp.arms}
    if action == "stop":
        st.warning(
            f"Stop {exp.name}? Everyone is served by the current version again, and the "
            "experiment cannot be restarted."
        )
        label = f"Confirm: stop {exp.name}"
    else:
        st.warning(
            f"Promote arm {value} of {exp.name}? Its version {versions[str(value)]} becomes the "
            "current version for everyone, and the experiment ends."
        )
        label = f"Confirm: promote {value}"
    confirm, cancel, _ = st.columns([2, 1, 5])
    if confirm.button(label, key=CONFIRM_KEY, type="primary"):
        del st.session_state[PENDING_KEY]
        _act(client, exp, action, value)
    if cancel.button("Cancel", key=CANCEL_KEY):
        del st.session_state[PENDING_KEY]
        st.rerun(scope="app")


def _act(client: GatewayClient, exp: Experiment, action: Action, value: str | None) -> None:
    """Stop or promote, then rerun the whole page on its new state with the outcome on top."""
    verb = "stop" if action == "stop" else f"promote arm {value} of"
    try:
        if action == "stop":
            ended = client.stop_experiment(exp.name, value)
        else:
            ended = client.promote_experiment(exp.name, value)
    except GatewayUnavailable as err:
        st.session_state[OUTCOME_KEY] = ("error", f"Could not {verb} {exp.name}: {err}")
    except GatewayError as err:
        st.session_state[OUTCOME_KEY] = ("error", f"Could not {verb} {exp.name}: {_refusal(err)}")
    else:
        st.session_state[OUTCOME_KEY] = _ended(ended, action)
    st.session_state[FOCUS_KEY] = exp.name
    st.rerun(scope="app")


def _ended(exp: Experiment, action: Action) -> Outcome:
    versions = {a.name: a.version for a in exp.arms}
    if action == "promote" and exp.status == "promoted" and exp.promoted is not None:
        return (
            "success",
            f"Arm {exp.promoted} of {exp.name} promoted: version {versions[exp.promoted]} is now "
            "the current version.",
        )
    if action == "stop" and exp.status == "stopped":
        return (
            "success",
            f"Experiment {exp.name} stopped ({exp.reason}): everyone is served by the current "
            "version again.",
        )
    # Stopping an ended experiment changes nothing: the gateway answers with it as it was.
    return ("warning", f"Experiment {exp.name} had already ended: {exp.status}, {exp.reason}.")


# --- start one ----------------------------------------------------------------------------


def _render_start(client: GatewayClient, running: Experiment | None) -> None:
    st.subheader("Start an experiment")
    if running is not None:
        st.caption(
            f"{running.name} is running: the gateway runs one experiment at a time, so stop or "
            "promote it first."
        )
    try:
        models = client.models()
    except GatewayError as err:
        st.warning(f"Could not read the model versions: {_http(err)}")
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
            st.error(f"Could not start experiment {request.name}: {_refusal(err)}")
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
            value=_percent(defaults.max_degraded_rate),
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
            value=_percent(defaults.max_primary_drop),
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
        "max_degraded_rate": _fraction(max_degraded),
        "max_primary_drop": _fraction(max_drop),
        "min_lists": int(judged_after),
    }


def _problem(loc: tuple[int | str, ...], msg: str) -> str:
    if loc[:1] == ("name",):
        return "name: letters, digits, _ . - only, starting with a letter or digit"
    where = ".".join(map(str, loc))
    msg = msg.removeprefix("Value error, ")
    return f"{where}: {msg}" if where else msg


# --- the ended ones -----------------------------------------------------------------------


def _render_ended(experiments: list[Experiment]) -> None:
    st.subheader("Ended experiments")
    ended = [e for e in reversed(experiments) if e.status != "running"]
    if not ended:
        st.caption("None has ended yet.")
        return
    st.table([_ended_row(e) for e in ended], hide_index=True)


def _ended_row(exp: Experiment) -> dict[str, str]:
    return {
        "name": exp.name,
        "status": exp.status,
        "started (UTC)": _when(exp.created),
        "ended (UTC)": _when(exp.ended) if exp.ended else "—",
        "arms": " · ".join(f"{a.name} v{a.version} {a.share:.0%}" for a in exp.arms),
        "primary metric": METRIC_TITLES[exp.primary_metric],
        "promoted": exp.promoted or "—",
        "reason": exp.reason or "—",
    }


# --- formatting ---------------------------------------------------------------------------


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.2f} %"


def _percent(fraction: float | None) -> float | None:
    return None if fraction is None else round(fraction * 100, 6)


def _fraction(percent: float | None) -> float | None:
    return None if percent is None else round(percent / 100, 8)


def _guardrails(g: Guardrails) -> str:
    parts = []
    if g.max_degraded_rate is not None:
        parts.append(f"degraded ≤ {g.max_degraded_rate:.1%}")
    if g.max_p99_ms is not None:
        parts.append(f"p99 ≤ {g.max_p99_ms:g} ms")
    if g.max_primary_drop is not None:
        parts.append(f"primary drop ≤ {g.max_primary_drop:.0%}")
    judged = f"judged after {g.min_lists} lists per arm"
    return ", ".join(parts) + f" ({judged})" if parts else f"none ({judged})"


def _http(err: GatewayError) -> str:
    return f"HTTP {err.status_code}: {err.detail}"


def _refusal(err: GatewayError) -> str:
    """The gateway's answer as a sentence; a missing or wrong admin key says what to do."""
    if err.status_code in (401, 403):
        return (
            f"{_http(err)}. This needs the gateway's admin key: set UI_ADMIN_API_KEY (or "
            "RECSYS_ADMIN_API_KEY) where the UI runs to the gateway's GATEWAY_ADMIN_API_KEY."
        )
    return _http(err)
