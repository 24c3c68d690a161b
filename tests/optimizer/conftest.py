"""Every optimizer test starts from a clean Keras session."""

from collections.abc import Iterator

import keras
import pytest


@pytest.fixture(autouse=True)
def _fresh_keras_state(fresh_keras_state):
    """Applies `fresh_keras_state` (tests/conftest.py) to every test in this folder."""


@pytest.fixture
def jax_float64() -> Iterator[None]:
    """Float64 arithmetic on JAX, which truncates float64 to float32 unless x64 is enabled
    (for the golden-trajectory tests that compare float64 runs)."""
    if keras.backend.backend() != "jax":
        yield
        return
    import jax

    with jax.enable_x64(True):
        yield
