"""Every optimizer test starts from a clean Keras session."""

import pytest


@pytest.fixture(autouse=True)
def _fresh_keras_state(fresh_keras_state):
    """Applies `fresh_keras_state` (tests/conftest.py) to every test in this folder."""
