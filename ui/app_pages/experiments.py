"""Page: A/B experiments between model versions: start one, watch it, stop or promote it."""

from __future__ import annotations

import streamlit as st

from ui.settings import get_settings
from ui.views import status
from ui.views.experiments import render_experiments

settings = get_settings()
st.title("Experiments")
status.render_guarded(settings, lambda client: render_experiments(client, settings))
