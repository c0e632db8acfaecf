"""Page: the held-out evaluation of a model version (metric bars per model, NDCG@K curves)."""

from __future__ import annotations

import streamlit as st

from ui.settings import get_settings
from ui.views import status
from ui.views.evaluation import render_evaluation

settings = get_settings()
st.title("Evaluation")
status.render_guarded(settings, render_evaluation)
