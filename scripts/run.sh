#!/usr/bin/env bash
# The main job: trains the README's example with SGDPlus. Sets up .venv/ on first use.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
exec .venv/bin/python examples/train_digits.py "$@"
