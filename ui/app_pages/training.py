"""Page: start training jobs on any dataset, follow the running one, and the recent ones."""

from __future__ import annotations

import streamlit as st

from ui.settings import get_settings
from ui.views import status
from ui.views.recommendations import EXAMPLE_USERS
from ui.views.training import render_training

settings = get_settings()
st.title("Training")
status.render_guarded(
    settings, lambda client: render_training(client, settings, probe_user=EXAMPLE_USERS[0])
)
