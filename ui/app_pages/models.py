"""Page: the registry's model versions, how they compare, and which one is served."""

from __future__ import annotations

import streamlit as st

from ui.settings import get_settings
from ui.views import status
from ui.views.models import render_models

settings = get_settings()
st.title("Models")
status.render_guarded(settings, lambda client: render_models(client, settings))
