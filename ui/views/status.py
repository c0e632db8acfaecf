"""Banners for the states in which a page cannot show what it is for."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

import streamlit as st

from ui.client import GatewayClient, GatewayError, GatewayUnavailable, ModelNotReady
from ui.settings import UISettings

logger = logging.getLogger("recsys.ui")
_TICKS_KEY = "status_refresh_ticks"
# How often a waiting page checks whether it can show more; the check is one cheap request.
_REFRESH_SECONDS = 3.0


def render_guarded(settings: UISettings, render: Callable[[GatewayClient], None]) -> None:
    """Run a page's body with a gateway client; every failure becomes a banner, not a traceback."""
    with GatewayClient.from_settings(settings) as client:
        try:
            render(client)
        except GatewayUnavailable:
            gateway_down(settings)
        except ModelNotReady:
            no_model_yet(settings)
        except GatewayError as err:
            gateway_error(err)
        except Exception:
            # Streamlit would print the traceback into the page; keep it in the log instead.
            # (Its own rerun/stop signals derive from BaseException and pass through.)
            logger.exception("unexpected error while rendering the page")
            st.error("Something unexpected went wrong; the details are in the UI's log.")


def gateway_down_text(settings: UISettings) -> str:
    return (
        f"The gateway at {settings.gateway_url} is not reachable. "
        "To start it, run `make run` in the project folder; "
        "this page reconnects by itself."
    )


def gateway_down(settings: UISettings) -> None:
    st.error(gateway_down_text(settings))
    auto_refresh(settings, until="reachable")


def no_model_yet(settings: UISettings) -> None:
    st.info(
        "No model yet — training the first one… This page refreshes by itself when it is ready."
    )
    auto_refresh(settings, until="ready")


def gateway_error(err: GatewayError) -> None:
    st.error(f"The gateway answered HTTP {err.status_code}: {err.detail}")


def auto_refresh(settings: UISettings, until: Literal["reachable", "ready"]) -> None:
    """Rerun the whole page once the gateway is reachable (or serves a model).

    A timed fragment checks in the background, so the user need not reload after `make run`
    or while the first model trains.
    """
    # The fragment also runs inline right now, just after the page found the gateway lacking;
    # counting calls lets that first call skip the check, so a flapping gateway cannot loop.
    st.session_state[_TICKS_KEY] = 0

    @st.fragment(run_every=_REFRESH_SECONDS)
    def check() -> None:
        st.session_state[_TICKS_KEY] += 1
        if st.session_state[_TICKS_KEY] == 1:
            return
        with GatewayClient.from_settings(settings) as client:
            try:
                ok = client.ready() or until == "reachable"
            except GatewayUnavailable:
                ok = False
            except GatewayError:  # reachable, just unhappy: enough for "reachable"
                ok = until == "reachable"
        if ok:
            st.rerun(scope="app")

    check()
