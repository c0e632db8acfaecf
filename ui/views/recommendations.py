"""User picker and the recommendation table."""

from __future__ import annotations

import math

import streamlit as st

from shared.schemas import RecommendedItem
from ui.client import GatewayClient, GatewayError, ModelNotReady
from ui.settings import UISettings
from ui.views import status

EXAMPLE_USERS = [f"U{i}" for i in range(1, 21)]
USER_KEY = "user"
EXAMPLE_KEY = "example_user"
K_KEY = "k"
# Prefix the tests (and users) look for; keep it in one place.
VERSION_CAPTION = "Ranked by model version"


def pick_user() -> tuple[str, int]:
    """Sidebar controls; returns (user id, k). A typed id wins over the example list."""
    # Seeding session state instead of passing value= lets the selectbox callback overwrite the
    # text without Streamlit's "default value and Session State" warning.
    st.session_state.setdefault(USER_KEY, EXAMPLE_USERS[0])
    st.session_state.setdefault(K_KEY, 10)
    with st.sidebar:
        st.header("Recommend for")
        typed: str = st.text_input(
            "User id", key=USER_KEY, help="Any id; unknown users get cold-start picks."
        )
        example = st.selectbox(
            "…or pick an example user", EXAMPLE_USERS, key=EXAMPLE_KEY, on_change=_use_example
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
    try:
        version, items = client.recommend(user, k)
    except ModelNotReady:
        status.no_model_yet(settings)
        return
    except GatewayError as err:
        # Mostly a malformed user id (422): the gateway's detail says what is wrong with it.
        st.warning(f"No recommendations for {user!r}: {err.detail}")
        return
    served = str(version) if version is not None else "unknown"
    st.caption(f"{VERSION_CAPTION} {served}")
    age = next((i.age for i in items if i.age is not None and math.isfinite(i.age)), None)
    if age is not None:
        st.markdown(f"**Age of {user}:** {age:.0f}")
    if not items:
        st.info(f"The model has nothing to recommend to {user}.")
        return
    # st.table rather than st.dataframe: its cells are real page text (searchable, testable).
    st.table([_row(rank, item) for rank, item in enumerate(items, start=1)], hide_index=True)


def _row(rank: int, item: RecommendedItem) -> dict[str, str | int]:
    # Pre-formatted strings: st.table would print raw floats like 12.340000.
    return {
        "rank": rank,
        "product": item.product,
        "title": item.title or "—",
        "price": f"{item.price:.2f}" if item.price is not None else "—",
        "category": item.category or "—",
        "score": f"{item.score:.3f}",
        "reason": item.reason,
    }
