"""Page: recommendations for one user, the served model's headline metrics, Retrain."""

from __future__ import annotations

import streamlit as st

from ui.client import GatewayClient
from ui.settings import UISettings, get_settings
from ui.views import status
from ui.views.header import render_header
from ui.views.recommendations import pick_user, render_recommendations
from ui.views.training import render_retrain


def _render(client: GatewayClient, settings: UISettings, user: str, k: int) -> None:
    render_header(client.models())
    # Reserved above the table, filled last: a running job's polling loop must not hold back
    # the recommendations.
    training_area = st.container()
    render_recommendations(client, settings, user, k)
    with training_area:
        render_retrain(client, settings, user)


settings = get_settings()
st.title("Product recommender")
user, k = pick_user()
status.render_guarded(settings, lambda client: _render(client, settings, user, k))
