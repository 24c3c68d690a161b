"""The keras-sgdplus dashboard: `streamlit run dashboard/app.py` (or `sgdplus dashboard`).

This file only routes; each page lives in `dashboard/app_pages/`.
"""

from pathlib import Path

import streamlit as st

PAGES = Path(__file__).parent / "app_pages"

st.set_page_config(page_title="keras-sgdplus", page_icon=":material/trending_down:", layout="wide")
navigation = st.navigation(
    [
        st.Page(PAGES / "train.py", title="Train", icon=":material/model_training:", default=True),
        st.Page(
            PAGES / "compare.py",
            title="Compare runs",
            icon=":material/compare_arrows:",
            url_path="compare",
        ),
        st.Page(
            PAGES / "landscape.py",
            title="Loss landscape",
            icon=":material/landscape:",
            url_path="landscape",
        ),
    ]
)
navigation.run()
