#!/usr/bin/env bash
# The whole test suite: ruff and mypy, then pytest on the TensorFlow backend, then the optimizer
# and the training engine's tests again on Keras's JAX backend (the dashboard's browser tests use
# Debian's chromium, installed if missing). Sets up .venv/ on first use.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
bash scripts/install_chromium.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy keras_sgdplus dashboard
KERAS_BACKEND=tensorflow .venv/bin/python -m pytest "$@"
KERAS_BACKEND=jax .venv/bin/python -m pytest tests/optimizer tests/lab/test_engine.py \
    tests/lab/test_training.py tests/lab/test_accelerators.py tests/lab/test_run_landscape.py "$@"
