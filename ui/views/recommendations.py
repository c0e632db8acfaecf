"""User picker, product cards with their explanation, and buttons that send events."""

from __future__ import annotations

import math
from dataclasses import dataclass

import streamlit as st

from shared.schemas.serving import EventType, Explanation, RecommendedItem
from ui.client import GatewayClient, GatewayError, GatewayUnavailable, ModelNotReady
from ui.settings import UISettings, get_settings
from ui.views import status

EXAMPLE_USERS = [f"U{i}" for i in range(1, 21)]
# An id no dataset uses: what a first-time visitor gets (cold start).
UNKNOWN_USER = "new-visitor"
USER_KEY = "user"
EXAMPLE_KEY = "example_user"
K_KEY = "k"
# Prefix the tests (and users) look for; keep it in one place.
VERSION_CAPTION = "Ranked by model version"
# The event a button sent, carried over the rerun so the page can say what changed.
EVENT_KEY = "last_event"
EVENT_BUTTONS: list[tuple[EventType, str]] = [
    ("view", ":material/visibility: View"),
    ("click", ":material/ads_click: Click"),
    ("purchase", ":material/shopping_bag: Buy"),
    ("hide", ":material/visibility_off: Hide"),
]
CARDS_PER_ROW = 2
# Contributions shown per item: the strongest ones, either sign.
TOP_CONTRIBUTIONS = 6


@dataclass(frozen=True)
class SentEvent:
    user: str
    product: str
    type: EventType
    before: list[str]  # the products shown when the button was pressed, best first
    error: str | None = None


def pick_user() -> tuple[str, int]:
    """Sidebar controls; returns (user id, k). A typed id wins over the example list."""
    # Seeding session state instead of passing value= lets the selectbox callback overwrite the
    # text without Streamlit's "default value and Session State" warning.
    st.session_state.setdefault(USER_KEY, EXAMPLE_USERS[0])
    st.session_state.setdefault(K_KEY, 10)
    with st.sidebar:
        st.header("Recommend for")
        typed: str = st.text_input(
            "User id",
            key=USER_KEY,
            help="Type any id; one the model has never seen gets cold-start picks.",
        )
        example = st.selectbox(
            "…or search the example users",
            [*EXAMPLE_USERS, UNKNOWN_USER],
            key=EXAMPLE_KEY,
            on_change=_use_example,
            format_func=lambda u: f"{u} (unknown user)" if u == UNKNOWN_USER else u,
        )
        k = st.slider("Number of recommendations", min_value=1, max_value=50, key=K_KEY)
    return typed.strip() or str(example), int(k)


def keep_sidebar_state() -> None:
    """Call on every run of every page, before any widget: keeps the picked user and k.

    Streamlit drops a widget's state at the end of any run that does not draw the widget, so a
    visit to another page would reset them; writing a key back makes it plain session state.
    """
    for key in (USER_KEY, EXAMPLE_KEY, K_KEY):
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def _use_example() -> None:
    st.session_state[USER_KEY] = st.session_state[EXAMPLE_KEY]


def render_recommendations(client: GatewayClient, settings: UISettings, user: str, k: int) -> None:
    st.subheader(f"Top {k} for {user}")
    sent: SentEvent | None = st.session_state.pop(EVENT_KEY, None)
    try:
        recs = client.recommendations(user, k, explain=True)
    except ModelNotReady:
        status.no_model_yet(settings)
        return
    except GatewayError as err:
        # Mostly a malformed user id (422): the gateway's detail says what is wrong with it.
        st.warning(f"No recommendations for {user!r}: {err.detail}")
        return
    items = recs.items
    served = str(recs.version) if recs.version is not None else "unknown"
    st.caption(f"{VERSION_CAPTION} {served}")
    if recs.degraded == "overload":
        st.warning(
            "Degraded answer: the service was too busy to personalise this answer, so these "
            "are popular items. Ask again in a moment."
        )
    elif recs.degraded is not None:
        st.warning(
            f"Degraded answer: the {recs.degraded} stage did not answer in time, so these "
            "items are in a simpler order and lack some details."
        )
    age = next((i.age for i in items if i.age is not None and math.isfinite(i.age)), None)
    if age is not None:
        st.markdown(f"**Age of {user}:** {age:.0f}")
    if items and all(i.reason.startswith("popular") for i in items):
        st.caption(f"No history for {user}: these are cold-start picks (popular items).")
    new: set[str] = set()
    if sent is not None and sent.user == user:
        new = _report_event(sent, [i.product for i in items])
    if not items:
        st.info(f"The model has nothing to recommend to {user}.")
        return
    shown = [i.product for i in items]
    for start in range(0, len(items), CARDS_PER_ROW):
        columns = st.columns(CARDS_PER_ROW)
        for column, (rank, item) in zip(
            columns, enumerate(items[start : start + CARDS_PER_ROW], start=start + 1), strict=False
        ):
            with column:
                _card(rank, item, user, shown, is_new=item.product in new)


def _card(rank: int, item: RecommendedItem, user: str, shown: list[str], is_new: bool) -> None:
    # The key becomes a CSS class (st-key-card-N): the browser test counts the cards by it.
    with st.container(border=True, key=f"card-{rank}"):
        badge = " :green-badge[new]" if is_new else ""
        st.markdown(f"**{rank}. {item.title or item.product}** · `{item.product}`{badge}")
        price = f"{item.price:.2f}" if item.price is not None else "price unknown"
        st.caption(
            f"{item.category or 'no category'} · {price} · score {item.score:.3f} · "
            f"{describe_reason(item.reason)}"
        )
        buttons = st.columns(len(EVENT_BUTTONS))
        for column, (event_type, label) in zip(buttons, EVENT_BUTTONS, strict=True):
            column.button(
                label,
                key=f"{event_type}-{item.product}",
                help=f"Send a '{event_type}' of {item.product} by {user} to POST /events",
                on_click=_send_event,
                args=(user, item.product, event_type, shown),
                width="stretch",
            )
        with st.expander("Why this item?"):
            _explain(user, item)


def describe_reason(reason: str) -> str:
    """The candidate stage's reason code as words."""
    kind, _, arg = reason.partition(":")
    if kind == "similar_to" and arg:
        return f"similar to {arg}"
    if kind == "popular_in" and arg:
        return f"popular in {arg}"
    if kind == "popular":
        return "popular overall"
    return reason.replace("_", " ")


def _explain(user: str, item: RecommendedItem) -> None:
    explanation: Explanation | None = item.explanation
    if explanation is None:
        st.caption("No explanation: the ranker did not score this answer.")
        return
    if explanation.seed is not None:
        st.markdown(f"Proposed because {user} had **{explanation.seed}**.")
    else:
        st.markdown(f"Proposed as {describe_reason(item.reason)}.")
    top = sorted(explanation.contributions.items(), key=lambda kv: -abs(kv[1]))
    rows = [{"feature": name, "contribution": f"{value:+.3f}"} for name, value in top]
    st.table(rows[:TOP_CONTRIBUTIONS], hide_index=True)
    st.caption(
        f"The ranker's score {item.score:.3f} = bias {explanation.bias:+.3f} + the "
        f"contributions of all {len(top)} features (LightGBM); the strongest are shown."
    )


def _send_event(user: str, product: str, event_type: EventType, shown: list[str]) -> None:
    """Button callback: runs before the rerun, so the page it draws already reflects the event."""
    error = None
    with GatewayClient.from_settings(get_settings()) as client:
        try:
            client.send_event(user, product, event_type)
        except GatewayUnavailable as err:
            error = str(err)
        except GatewayError as err:
            error = f"HTTP {err.status_code}: {err.detail}"
    st.session_state[EVENT_KEY] = SentEvent(user, product, event_type, shown, error)


def _report_event(sent: SentEvent, after: list[str]) -> set[str]:
    """Say what the event changed; returns the products that are new in the list."""
    if sent.error is not None:
        st.error(f"Could not send the {sent.type} of {sent.product}: {sent.error}")
        return set()
    before = set(sent.before)
    new = [p for p in after if p not in before]
    dropped = [p for p in sent.before if p not in set(after)]
    moved = sum(1 for rank, p in enumerate(after) if p in before and sent.before.index(p) != rank)
    what = f"Sent a **{sent.type}** of `{sent.product}` for {sent.user}."
    if not new and not dropped and moved == 0:
        st.info(f"{what} The recommendations did not change.")
        return set()
    parts = []
    if new:
        parts.append(f"{len(new)} new ({', '.join(new)})")
    if dropped:
        parts.append(f"{len(dropped)} dropped ({', '.join(dropped)})")
    if moved:
        parts.append(f"{moved} moved")
    st.success(f"{what} The recommendations changed: {'; '.join(parts)}.")
    return set(new)
