"""The keras-sgdplus dashboard: an experiment runner and the loss-landscape playground.

`dashboard/lab/` (the engine) and `dashboard/app.py` (the Streamlit app) land with the
issues that build them.
"""
