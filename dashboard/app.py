"""The keras-sgdplus dashboard: `streamlit run dashboard/app.py` (or `sgdplus dashboard`).

This file keeps the server off the GPUs, keeps its garbage collections cheap, checks where
it is served (`keras_sgdplus.lab.serving`) and routes; each page lives in
`dashboard/app_pages/`.
"""

# First, before any page imports Keras: the server runs Keras on the CPU only, and must never
# start a GPU runtime (TensorFlow would take nearly all GPU memory from the training
# workers). The workers get the GPUs back (`lab.accelerators.prepare_process`).
from keras_sgdplus.lab.accelerators import keep_server_off_accelerators

keep_server_off_accelerators()

# Then Keras with its backend and the libraries the pages draw with, loaded once per server
# and frozen out of garbage collection: Streamlit collects after every rerun of the live
# view, and walking these objects cost 0.3-0.5 s of CPU each time (lab/server_memory.py).
from keras_sgdplus.lab import server_memory  # noqa: E402

server_memory.load_and_freeze()

from pathlib import Path  # noqa: E402

import streamlit as st  # noqa: E402
from keras_sgdplus.dashboard.app_pages import common  # noqa: E402
from streamlit import config as streamlit_config  # noqa: E402

from keras_sgdplus.lab import serving  # noqa: E402

PAGES = Path(__file__).parent / "app_pages"

# Usage statistics stay off even when `.streamlit/config.toml` was not read (a copy of the app
# without it): from this run on, new sessions tell the browser not to send them. An explicit
# `--browser.gatherUsageStats true` is the user's choice and kept.
if not streamlit_config.is_manually_set("browser.gatherUsageStats"):
    streamlit_config.set_option("browser.gatherUsageStats", False, "keras_sgdplus dashboard")

# An emoji icon is drawn by the browser itself: a `:material/...:` page icon is fetched from
# fonts.gstatic.com, and nothing of the dashboard should leave this machine.
st.set_page_config(page_title="keras-sgdplus", page_icon="📉", layout="wide")
check = serving.check_address(
    streamlit_config.get_option("server.address"),
    chosen_by_user=streamlit_config.is_manually_set("server.address"),
)
if check.exposure is serving.Exposure.REFUSED:
    st.title("keras-sgdplus")
    st.error(check.message, icon=":material/lock:")
    st.stop()
if check.exposure is serving.Exposure.CHOSEN:
    st.warning(check.message, icon=":material/public:")

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
            PAGES / "sweep.py",
            title="Sweeps",
            icon=":material/grid_view:",
            url_path="sweeps",
        ),
        st.Page(
            PAGES / "landscape.py",
            title="Loss landscape",
            icon=":material/landscape:",
            url_path="landscape",
        ),
        st.Page(
            PAGES / "run_landscape.py",
            title="Landscape of a run",
            icon=":material/terrain:",
            url_path="run-landscape",
        ),
    ]
)
common.queue_setting()
navigation.run()
