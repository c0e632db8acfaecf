"""The Experiments page through AppTest against a scripted gateway: the form's body, the report,
a guardrail's stop, stop and promote, and the gateway's refusals as readable messages."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest

from tests.ui.conftest import FakeGateway, Reply, fake_gateway, reply
from ui.views.experiment_form import (
    MAX_DROP_KEY,
    MAX_P99_KEY,
    METRIC_KEY,
    NAME_KEY,
    START_KEY,
    TREATMENTS_KEY,
    equal_split,
    share_key,
)
from ui.views.experiments import (
    CANCEL_KEY,
    CONFIRM_KEY,
    PROMOTE_ARM_KEY,
    PROMOTE_KEY,
    REPORT_KEY,
    STOP_KEY,
    STOP_REASON_KEY,
    WINNER_MARK,
)

APP = Path(__file__).resolve().parents[2] / "ui" / "app.py"
PAGE = "app_pages/experiments.py"
T0 = 1_717_236_000.0  # 2024-06-01 10:00 UTC

MODELS = {
    "current": 2,
    "versions": [
        {
            "version": v,
            "created_at": f"2024-05-0{v}T10:00:00Z",
            "dataset": "synthetic",
            "metrics": {"ndcg@10": 0.2 + v / 100},
        }
        for v in (1, 2, 3)
    ],
}
DEFAULT_GUARDRAILS = {
    "max_p99_ms": None,
    "max_degraded_rate": 0.05,
    "max_primary_drop": None,
    "min_lists": 200,
}
GUARDRAIL_REASON = "guardrail max_degraded_rate: arm v1 degraded 12.0% of 250 answers (limit 5.0%)"


def experiment(
    name: str,
    versions: tuple[int, int] = (2, 3),
    status: str = "running",
    reason: str | None = None,
    promoted: str | None = None,
    created: float = T0,
    ended_by: str | None = None,
) -> dict[str, Any]:
    """An experiment as the gateway stores it: control against one treatment, half each
    (`ended_by` None: as stored before that field existed)."""
    control, treatment = versions
    return {
        "name": name,
        "arms": [
            {"name": "control", "version": control, "share": 0.5},
            {"name": f"v{treatment}", "version": treatment, "share": 0.5},
        ],
        "primary_metric": "click_rate",
        "guardrails": DEFAULT_GUARDRAILS,
        "alpha": 0.05,
        "mixing_sd": 0.02,
        "salt": "0123456789abcdef",
        "status": status,
        "created": created,
        "ended": None if status == "running" else created + 3600,
        "reason": reason,
        "promoted": promoted,
        "ended_by": ended_by,
    }


# An arm's figures in ArmReport's order, vs_control aside.
FIGURES = ("lists", "items_shown", "degraded", "clicks", "add_to_cart", "purchases", "revenue",
           "lists_clicked", "lists_with_cart", "lists_converted", "primary", "p99_ms")  # fmt: skip


def arm(
    name: str, version: int, figures: tuple[float, ...], vs: dict[str, float] | None = None
) -> dict[str, Any]:
    counts = dict(zip(FIGURES, figures, strict=True))
    return {"name": name, "version": version, "share": 0.5, **counts, "vs_control": vs}


def report(exp: dict[str, Any], wins: bool = True) -> dict[str, Any]:
    """GET /experiments/{name}: the treatment beats the control on click rate (if `wins`),
    else no difference yet."""
    control, treatment = (a["version"] for a in exp["arms"])
    winner = f"v{treatment}" if wins else None
    vs = {"estimate": 0.0403, "low": 0.0112, "high": 0.0694}
    arms = [
        arm("control", control, (1200, 12000, 6, 130, 20, 8, 240.5, 96, 18, 7, 0.08, 84.4)),
        arm(
            f"v{treatment}",
            treatment,
            (1180, 11800, 0, 190, 31, 11, 301, 142, 27, 10, 0.1203, 91),
            vs,
        ),
    ]
    verdict = (
        f"v{treatment} beats control control on click_rate"
        if winner
        else "no difference on click_rate yet (the interval still covers 0)"
    )
    return {"experiment": exp, "arms": arms, "verdict": verdict, "winner": winner}


def _list(gateway: FakeGateway, raw: bytes) -> Reply:
    return 200, list(gateway.state["experiments"].values())


def _report(name: str) -> Any:
    def route(gateway: FakeGateway, raw: bytes) -> Reply:
        exp = gateway.state["experiments"][name]
        return 200, report(exp, gateway.state.get("wins", True))

    return route


def _ends(name: str, status: str) -> Any:
    """POST .../stop or .../promote: the stored experiment ends as the gateway would end it."""

    def route(gateway: FakeGateway, raw: bytes) -> Reply:
        body = json.loads(raw) if raw else {}
        exp = dict(gateway.state["experiments"][name])
        if status == "stopped":
            exp.update(status="stopped", reason=body.get("reason", "stopped by hand"))
        else:
            chosen = body.get("arm") or report(exp)["winner"]
            exp.update(status="promoted", reason=f"arm {chosen} promoted", promoted=chosen)
        exp["ended"] = T0 + 600
        gateway.state["experiments"][name] = exp
        return 200, exp

    return route


def gateway_with(*experiments: dict[str, Any]) -> FakeGateway:
    gateway = FakeGateway(
        routes={("GET", "/models"): reply(MODELS), ("GET", "/experiments"): _list},
    )
    gateway.state["experiments"] = {e["name"]: e for e in experiments}
    for e in experiments:
        name = e["name"]
        gateway.routes[("GET", f"/experiments/{name}")] = _report(name)
        gateway.routes[("POST", f"/experiments/{name}/stop")] = _ends(name, "stopped")
        gateway.routes[("POST", f"/experiments/{name}/promote")] = _ends(name, "promoted")
    return gateway


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """serve(gateway): the page's UI_GATEWAY_URL points at it until the test ends."""
    with contextlib.ExitStack() as stack:

        def start(gateway: FakeGateway) -> FakeGateway:
            monkeypatch.setenv("UI_GATEWAY_URL", stack.enter_context(fake_gateway(gateway)))
            return gateway

        yield start


def _open() -> AppTest:
    # The entry point first: st.navigation registers the pages switch_page resolves against.
    return AppTest.from_file(APP, default_timeout=30).run().switch_page(PAGE).run()


def _rows(at: AppTest, column: str) -> list[dict[str, Any]]:
    """The rows of the one table with `column`."""
    tables = [t.value for t in at.table if column in t.value.columns]
    assert len(tables) == 1, [list(t.value.columns) for t in at.table]
    return [{str(k): v for k, v in row.items()} for row in tables[0].to_dict("records")]


def _posts(gateway: FakeGateway) -> list[tuple[str, object]]:
    return [(path, body) for method, path, body in gateway.requests if method == "POST"]


def _texts(elements: Any) -> list[str]:
    return [str(e.value) for e in elements]


# --- the form -------------------------------------------------------------------------------


def test_the_form_starts_from_the_apis_defaults(serve: Any) -> None:
    gateway = serve(gateway_with())
    created = experiment("ranker-v3")
    gateway.routes[("POST", "/experiments")] = reply(created, 201)

    at = _open()

    assert not at.exception
    assert _texts(at.info) == ["No experiment yet: start one below."]
    assert at.selectbox(key="exp_control").value == 2  # the current version
    assert at.multiselect(key=TREATMENTS_KEY).value == [3]  # the newest other one
    assert [at.number_input(key=share_key(2, i)).value for i in (0, 1)] == [50.0, 50.0]
    assert at.button(key=START_KEY).disabled  # no name yet

    at.text_input(key=NAME_KEY).input("ranker-v3").run()
    assert not at.button(key=START_KEY).disabled
    gateway.state["experiments"]["ranker-v3"] = created  # what the gateway lists once started
    gateway.routes[("GET", "/experiments/ranker-v3")] = _report("ranker-v3")
    at.button(key=START_KEY).click().run()

    assert not at.exception
    assert _posts(gateway) == [
        (
            "/experiments",
            {
                "name": "ranker-v3",
                "arms": [
                    {"name": "control", "version": 2, "share": 0.5},
                    {"name": "v3", "version": 3, "share": 0.5},
                ],
                "primary_metric": "click_rate",
                "guardrails": DEFAULT_GUARDRAILS,
            },
        )
    ]
    assert _texts(at.success)[0] == (
        "Experiment ranker-v3 started: control (version 2, 50%), v3 (version 3, 50%)."
    )
    assert at.selectbox(key=REPORT_KEY).value == "ranker-v3"  # its report opens


def test_the_form_sends_what_was_chosen(serve: Any) -> None:
    gateway = serve(gateway_with())
    gateway.routes[("POST", "/experiments")] = reply(experiment("three-arms"), 201)
    at = _open()

    at.text_input(key=NAME_KEY).input("three-arms")
    at.multiselect(key=TREATMENTS_KEY).select(1).run()  # two treatments: three arms
    assert [at.number_input(key=share_key(3, i)).value for i in range(3)] == equal_split(3)
    at.number_input(key=share_key(3, 0)).set_value(50.0)
    at.number_input(key=share_key(3, 1)).set_value(20.0).run()
    assert _texts(at.error) == ["The shares add up to 103.33 %, not 100 %."]
    assert at.button(key=START_KEY).disabled
    at.number_input(key=share_key(3, 2)).set_value(30.0)
    at.selectbox(key=METRIC_KEY).select("ctr")
    at.number_input(key=MAX_P99_KEY).set_value(200.0)
    at.number_input(key=MAX_DROP_KEY).set_value(10.0).run()
    assert not at.error
    at.button(key=START_KEY).click().run()

    assert not at.exception
    ((path, body),) = _posts(gateway)
    assert path == "/experiments"
    assert body == {
        "name": "three-arms",
        "arms": [
            {"name": "control", "version": 2, "share": 0.5},
            {"name": "v1", "version": 1, "share": 0.2},
            {"name": "v3", "version": 3, "share": 0.3},
        ],
        "primary_metric": "ctr",
        "guardrails": {
            "max_p99_ms": 200.0,
            "max_degraded_rate": 0.05,
            "max_primary_drop": 0.1,
            "min_lists": 200,
        },
    }


def test_a_bad_name_is_explained_before_sending(serve: Any) -> None:
    gateway = serve(gateway_with())
    at = _open()

    at.text_input(key=NAME_KEY).input("my test!").run()

    assert not at.exception
    assert _texts(at.error) == [
        "name: letters, digits, _ . - only, starting with a letter or digit"
    ]
    assert at.button(key=START_KEY).disabled
    assert _posts(gateway) == []


@pytest.mark.parametrize(
    ("code", "detail", "shown"),
    [
        (
            409,
            "experiment 'ranker-v3' is running: stop it first",
            "HTTP 409: experiment 'ranker-v3' is running: stop it first",
        ),
        (
            422,
            [{"loc": ["body", "arms"], "msg": "model version 3 does not exist", "type": "x"}],
            "HTTP 422: model version 3 does not exist",
        ),
        (
            401,
            "missing X-API-Key header",
            "HTTP 401: missing X-API-Key header. This needs the gateway's admin key: set "
            "UI_ADMIN_API_KEY (or RECSYS_ADMIN_API_KEY) where the UI runs to the gateway's "
            "GATEWAY_ADMIN_API_KEY.",
        ),
    ],
)
def test_a_refused_start_shows_the_gateways_detail(
    serve: Any, code: int, detail: object, shown: str
) -> None:
    gateway = serve(gateway_with(experiment("ranker-v3")))
    gateway.routes[("POST", "/experiments")] = reply({"detail": detail}, code)
    at = _open()
    assert any("ranker-v3 is running" in c for c in _texts(at.caption))

    at.text_input(key=NAME_KEY).input("ranker-v4").run()
    at.button(key=START_KEY).click().run()

    assert not at.exception
    assert [p for p, _ in _posts(gateway)] == ["/experiments"]
    assert _texts(at.error) == [f"Could not start experiment ranker-v4: {shown}"]
    assert at.text_input(key=NAME_KEY).value == "ranker-v4"  # the form keeps what was typed


# --- the report -----------------------------------------------------------------------------


def test_the_report_shows_every_arm_and_the_verdict(serve: Any) -> None:
    serve(gateway_with(experiment("ranker-v3")))

    at = _open()

    assert not at.exception
    assert not at.error
    assert at.selectbox(key=REPORT_KEY).value == "ranker-v3"
    assert _texts(at.success) == [
        "Verdict: v3 beats control control on click_rate. Winner: v3 (version 3)."
    ]
    assert _rows(at, "vs control") == [
        {
            "arm": "control",
            "version": 2,
            "share": "50%",
            "lists": 1200,
            "items shown": 12000,
            "degraded": "6 (0.5%)",
            "click rate": "8.00 %",
            "p99": "84.4 ms",
            "vs control": "—",
            "interval": "—",
            "": "",
        },
        {
            "arm": "v3",
            "version": 3,
            "share": "50%",
            "lists": 1180,
            "items shown": 11800,
            "degraded": "0 (0.0%)",
            "click rate": "12.03 %",
            "p99": "91.0 ms",
            "vs control": "+4.03 pp",
            "interval": "[+1.12, +6.94] pp",
            "": WINNER_MARK,
        },
    ]
    assert _rows(at, "purchases")[1] == {
        "arm": "v3",
        "clicks": 190,
        "add to cart": 31,
        "purchases": 11,
        "revenue": "301.00",
        "lists clicked": 142,
        "lists with add-to-cart": 27,
        "lists converted": 10,
    }
    # The interval as a chart: a bar from low to high, the estimate, the line at 0.
    (chart,) = at.get("vega_lite_chart")
    spec = json.loads(chart.proto.spec)
    marks = [layer["mark"]["type"] for layer in spec["layer"]]
    assert marks == ["rule", "point", "rule"]
    (data,) = chart.proto.datasets  # the layers share one data frame
    plotted = convert_arrow_bytes_to_pandas_df(data.data.data)
    assert plotted.to_dict("records") == [
        {"arm": "v3", "difference": 4.03, "low": 1.12, "high": 6.94}
    ]
    # While it runs: Stop, and Promote preset on the winner.
    assert at.selectbox(key=PROMOTE_ARM_KEY).value == "v3"
    assert not at.button(key=PROMOTE_KEY).disabled
    assert any(c.endswith("read again every 5 s") for c in _texts(at.caption))


def test_who_ended_it_decides_the_banner_not_the_reasons_words(serve: Any) -> None:
    by_guard = experiment("g", (2, 1), status="stopped", reason="p99 412 ms over 300 ms",
                          created=T0 + 7200, ended_by="guardrail")  # fmt: skip
    by_hand = experiment("h", (2, 1), status="stopped", reason="guardrail tests done",
                         created=T0 + 3600, ended_by="stop")  # fmt: skip
    serve(gateway_with(by_hand, by_guard))  # as the gateway lists them: oldest first

    at = _open()  # the newest, ended by its guardrail with a reason in other words

    assert not at.exception
    assert at.selectbox(key=REPORT_KEY).value == "g"
    assert [e.startswith("**Stopped by a guardrail**") for e in _texts(at.error)] == [True]
    at.selectbox(key=REPORT_KEY).select("h").run()  # stopped by hand, "guardrail" in its reason
    assert not at.exception and _texts(at.error) == []


def test_a_guardrails_stop_shows_its_reason(serve: Any) -> None:
    stopped = experiment(
        "ranker-v1", (2, 1), status="stopped", reason=GUARDRAIL_REASON, created=T0 + 7200
    )
    promoted = experiment("ranker-v2", (1, 2), status="promoted", reason="arm v2 promoted",
                          promoted="v2")  # fmt: skip
    serve(gateway_with(promoted, stopped))

    at = _open()

    assert not at.exception
    assert at.selectbox(key=REPORT_KEY).value == "ranker-v1"  # the newest
    assert _texts(at.error) == [
        f"**Stopped by a guardrail** at 2024-06-01 13:00 UTC: {GUARDRAIL_REASON}. Everyone is "
        "served by the current version again."
    ]
    assert STOP_KEY not in [b.key for b in at.button]  # an ended experiment has no actions
    assert PROMOTE_KEY not in [b.key for b in at.button]
    assert _rows(at, "reason") == [
        {
            "name": "ranker-v1",
            "status": "stopped",
            "started (UTC)": "2024-06-01 12:00",
            "ended (UTC)": "2024-06-01 13:00",
            "arms": "control v2 50% · v1 v1 50%",
            "primary metric": "click rate",
            "promoted": "—",
            "reason": GUARDRAIL_REASON,
        },
        {
            "name": "ranker-v2",
            "status": "promoted",
            "started (UTC)": "2024-06-01 10:00",
            "ended (UTC)": "2024-06-01 11:00",
            "arms": "control v1 50% · v2 v2 50%",
            "primary metric": "click rate",
            "promoted": "v2",
            "reason": "arm v2 promoted",
        },
    ]

    at.selectbox(key=REPORT_KEY).select("ranker-v2").run()

    assert not at.exception
    assert not at.error
    assert _texts(at.success)[0] == (
        "Promoted at 2024-06-01 11:00 UTC: arm v2 (version 2) became the current version."
    )


def test_a_stop_while_watching_reruns_the_page(serve: Any) -> None:
    """The list says running, the report (read a moment later) says a guardrail stopped it."""
    gateway = serve(gateway_with(experiment("ranker-v3")))
    stopped = experiment("ranker-v3", status="stopped", reason=GUARDRAIL_REASON)

    def listed(gw: FakeGateway, raw: bytes) -> Reply:
        answer = list(gw.state["experiments"].values())
        gw.state["experiments"]["ranker-v3"] = stopped  # stopped right after this read
        return 200, answer

    gateway.routes[("GET", "/experiments")] = listed

    at = _open()

    assert not at.exception
    assert any("Stopped by a guardrail" in e for e in _texts(at.error))
    assert _rows(at, "reason")[0]["status"] == "stopped"  # the page reran on the new state
    assert STOP_KEY not in [b.key for b in at.button]


# --- stop and promote -----------------------------------------------------------------------


def test_stop_asks_first_then_calls_stop(serve: Any) -> None:
    gateway = serve(gateway_with(experiment("ranker-v3")))
    at = _open()

    at.text_input(key=STOP_REASON_KEY).input("enough data")
    at.button(key=STOP_KEY).click().run()
    assert _texts(at.warning) == [
        "Stop ranker-v3? Everyone is served by the current version again, and the experiment "
        "cannot be restarted."
    ]
    at.button(key=CANCEL_KEY).click().run()
    assert CONFIRM_KEY not in [b.key for b in at.button]
    assert _posts(gateway) == []

    at.button(key=STOP_KEY).click().run()
    assert at.button(key=CONFIRM_KEY).label == "Confirm: stop ranker-v3"
    at.button(key=CONFIRM_KEY).click().run()

    assert not at.exception
    assert _posts(gateway) == [("/experiments/ranker-v3/stop", {"reason": "enough data"})]
    assert _texts(at.success)[0] == (
        "Experiment ranker-v3 stopped (enough data): everyone is served by the current "
        "version again."
    )
    assert _texts(at.warning) == ["Stopped at 2024-06-01 10:10 UTC: enough data."]
    assert _rows(at, "reason")[0]["reason"] == "enough data"


def test_stop_without_a_reason_sends_no_body(serve: Any) -> None:
    gateway = serve(gateway_with(experiment("ranker-v3")))
    at = _open()

    at.button(key=STOP_KEY).click().run()
    at.button(key=CONFIRM_KEY).click().run()

    assert not at.exception
    assert _posts(gateway) == [("/experiments/ranker-v3/stop", None)]
    assert _rows(at, "reason")[0]["reason"] == "stopped by hand"  # the gateway's default


def test_promote_the_winner(serve: Any) -> None:
    gateway = serve(gateway_with(experiment("ranker-v3")))
    at = _open()

    at.button(key=PROMOTE_KEY).click().run()
    assert _texts(at.warning) == [
        "Promote arm v3 of ranker-v3? Its version 3 becomes the current version for everyone, "
        "and the experiment ends."
    ]
    at.button(key=CONFIRM_KEY).click().run()

    assert not at.exception
    assert _posts(gateway) == [("/experiments/ranker-v3/promote", {"arm": "v3"})]
    assert _texts(at.success)[0] == (
        "Arm v3 of ranker-v3 promoted: version 3 is now the current version."
    )
    assert _rows(at, "reason")[0]["promoted"] == "v3"


def test_promote_a_chosen_arm_without_a_winner(serve: Any) -> None:
    gateway = serve(gateway_with(experiment("ranker-v3")))
    gateway.state["wins"] = False
    at = _open()

    assert _texts(at.info)[0] == (
        "Verdict: no difference on click_rate yet (the interval still covers 0)."
    )
    assert at.selectbox(key=PROMOTE_ARM_KEY).value is None
    assert at.button(key=PROMOTE_KEY).disabled

    at.selectbox(key=PROMOTE_ARM_KEY).select("control").run()
    at.button(key=PROMOTE_KEY).click().run()
    assert at.button(key=CONFIRM_KEY).label == "Confirm: promote control"
    at.button(key=CONFIRM_KEY).click().run()

    assert not at.exception
    assert _posts(gateway) == [("/experiments/ranker-v3/promote", {"arm": "control"})]
    assert _texts(at.success)[0] == (
        "Arm control of ranker-v3 promoted: version 2 is now the current version."
    )


@pytest.mark.parametrize(
    ("action", "code", "detail", "shown"),
    [
        (
            "promote",
            409,
            "experiment 'ranker-v3' is stopped",
            "Could not promote arm v3 of ranker-v3: HTTP 409: experiment 'ranker-v3' is stopped",
        ),
        (
            "stop",
            403,
            "invalid X-API-Key",
            "Could not stop ranker-v3: HTTP 403: invalid X-API-Key. This needs the gateway's "
            "admin key: set UI_ADMIN_API_KEY (or RECSYS_ADMIN_API_KEY) where the UI runs to the "
            "gateway's GATEWAY_ADMIN_API_KEY.",
        ),
    ],
)
def test_a_refused_action_is_a_banner(
    serve: Any, action: str, code: int, detail: str, shown: str
) -> None:
    gateway = serve(gateway_with(experiment("ranker-v3")))
    gateway.routes[("POST", f"/experiments/ranker-v3/{action}")] = reply({"detail": detail}, code)
    at = _open()

    at.button(key=STOP_KEY if action == "stop" else PROMOTE_KEY).click().run()
    at.button(key=CONFIRM_KEY).click().run()

    assert not at.exception
    assert [p for p, _ in _posts(gateway)] == [f"/experiments/ranker-v3/{action}"]
    assert _texts(at.error) == [shown]
    assert STOP_KEY in [b.key for b in at.button]  # still running: the actions stay


def test_an_unreadable_report_is_a_banner(serve: Any) -> None:
    gateway = serve(gateway_with(experiment("ranker-v3")))
    gateway.routes[("GET", "/experiments/ranker-v3")] = reply(
        {"detail": "no experiment named 'ranker-v3'"}, 404
    )

    at = _open()

    assert not at.exception
    assert _texts(at.error) == [
        "Could not read experiment ranker-v3: HTTP 404: no experiment named 'ranker-v3'"
    ]
    assert at.text_input(key=NAME_KEY)  # the rest of the page is still there
