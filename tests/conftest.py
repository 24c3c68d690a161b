"""Shared test set-up: quiet TensorFlow logs, and fresh Keras state per test."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("JAX_ENABLE_X64", "1")  # float64 tests on the JAX backend too

import keras
import pytest

if keras.backend.backend() == "tensorflow":
    import tensorflow as tf

    # Two logical CPU devices for the tf.distribute.MirroredStrategy tests; this must happen
    # before TensorFlow runs its first op.
    (_cpu,) = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * 2)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "tensorflow_only: needs the TensorFlow backend (tf.distribute, tapes, XLA)"
    )
    config.addinivalue_line("markers", "jax_only: checks what only the JAX backend does")


def pytest_collection_modifyitems(config, items):
    """Each backend's run leaves out the other backend's tests (scripts/test.sh runs both)."""
    other = "jax_only" if keras.backend.backend() == "tensorflow" else "tensorflow_only"
    kept = [item for item in items if other not in item.keywords]
    left_out = [item for item in items if other in item.keywords]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


@pytest.fixture
def fresh_keras_state():
    """A clean Keras session and float32 policy (clear_session costs about 0.25 s)."""
    keras.backend.clear_session()
    keras.mixed_precision.set_dtype_policy("float32")
    yield
    keras.mixed_precision.set_dtype_policy("float32")
