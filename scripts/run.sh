#!/usr/bin/env bash
# The main job: the dashboard on http://localhost:8501 (`streamlit run dashboard/app.py`, with
# the settings in .streamlit/config.toml). Sets up .venv/ on first use. Extra arguments go to
# Streamlit, e.g. `bash scripts/run.sh --server.port 8600`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
echo "keras-sgdplus dashboard: Streamlit prints its address below (default http://localhost:8501); Ctrl+C stops it"
exec .venv/bin/streamlit run dashboard/app.py "$@"
