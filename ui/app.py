"""Streamlit entry point: `streamlit run ui/app.py`. Talks to the gateway only.

Six pages through Streamlit's navigation; each page is a script in `ui/app_pages/` (a folder
named `pages/` would switch Streamlit to its older, directory-driven multipage mode).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui.views.recommendations import keep_sidebar_state

PAGES_DIR = Path(__file__).resolve().parent / "app_pages"


def main() -> None:
    st.set_page_config(page_title="Product recommender", page_icon="🛒", layout="wide")
    keep_sidebar_state()
    page = st.navigation(
        [
            st.Page(
                PAGES_DIR / "recommendations.py",
                title="Recommendations",
                icon=":material/shopping_cart:",
                default=True,
            ),
            st.Page(PAGES_DIR / "training.py", title="Training", icon=":material/model_training:"),
            st.Page(PAGES_DIR / "models.py", title="Models", icon=":material/inventory_2:"),
            st.Page(PAGES_DIR / "evaluation.py", title="Evaluation", icon=":material/analytics:"),
            st.Page(PAGES_DIR / "live.py", title="Live", icon=":material/monitor_heart:"),
            st.Page(PAGES_DIR / "experiments.py", title="Experiments", icon=":material/science:"),
        ]
    )
    page.run()


if __name__ == "__main__":
    main()
