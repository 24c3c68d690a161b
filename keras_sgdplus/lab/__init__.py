"""The experiment engine: datasets, models, training jobs and the saved-runs store.

Plain Python with no Streamlit import, usable from the `sgdplus` command and from Python.
"""
