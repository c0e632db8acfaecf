"""Page: what every service serves right now, how fast, and how often it answers degraded."""

from __future__ import annotations

import streamlit as st

from ui.settings import get_settings
from ui.views import status
from ui.views.live import render_live

settings = get_settings()
st.title("Live")
status.render_guarded(settings, lambda client: render_live(settings))
