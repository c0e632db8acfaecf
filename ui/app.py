"""Streamlit entry point: `streamlit run ui/app.py`. Talks to the gateway only."""

from __future__ import annotations

import logging

import streamlit as st

from ui.client import GatewayClient, GatewayError, GatewayUnavailable, ModelNotReady
from ui.settings import UISettings, get_settings
from ui.views import status
from ui.views.header import render_header
from ui.views.recommendations import pick_user, render_recommendations
from ui.views.training import render_retrain

logger = logging.getLogger("recsys.ui")


def main() -> None:
    settings = get_settings()
    st.set_page_config(page_title="Product recommender", page_icon="🛒", layout="wide")
    st.title("Product recommender")
    user, k = pick_user()
    with GatewayClient(settings.gateway_url, settings.timeout_seconds) as client:
        try:
            _render_page(client, settings, user, k)
        except GatewayUnavailable:
            status.gateway_down(settings)
        except ModelNotReady:
            status.no_model_yet(settings)
        except GatewayError as err:
            status.gateway_error(err)
        except Exception:
            # Streamlit would print the traceback into the page; keep it in the log instead.
            # (Its own rerun/stop signals derive from BaseException and pass through.)
            logger.exception("unexpected error while rendering the page")
            st.error("Something unexpected went wrong; the details are in the UI's log.")


def _render_page(client: GatewayClient, settings: UISettings, user: str, k: int) -> None:
    render_header(client.models())
    # Reserved above the table, filled last: a running job's polling loop must not hold back
    # the recommendations.
    training_area = st.container()
    render_recommendations(client, settings, user, k)
    with training_area:
        render_retrain(client, settings, user)


if __name__ == "__main__":
    main()
