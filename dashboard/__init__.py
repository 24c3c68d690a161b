"""The keras-sgdplus dashboard: the Streamlit app over `keras_sgdplus.lab`.

Installed as `keras_sgdplus.dashboard` (pyproject.toml maps this folder there), started by
`streamlit run dashboard/app.py` or `sgdplus dashboard`. `app.py` routes, `app_pages/`
describe the pages, and `.streamlit/config.toml` holds the server's safe settings, which
Streamlit reads next to `app.py` from whatever folder it is started.
"""
