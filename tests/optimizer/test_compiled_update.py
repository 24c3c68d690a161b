"""The update of all variables runs as one XLA computation, and falls back where it can't."""

import warnings

import keras
import numpy as np
import pytest

from keras_sgdplus import SGDPlus, _backend
from tests.optimizer.reference import ReferenceSGD
from tests.optimizer.trajectories import (
    assert_trajectories_close,
    gradient_sequence,
    initial_weights,
    run_keras_optimizer,
    run_reference,
)

SHAPES = [(6, 5), (5,), (5, 2), (2,)]


def variables_and_gradients():
    weights = initial_weights(SHAPES)
    variables = [keras.Variable(w.astype("float32")) for w in weights]
    gradients = [
        keras.ops.convert_to_tensor(g.astype("float32")) for g in gradient_sequence(SHAPES, 1)[0]
    ]
    return variables, gradients


@pytest.mark.tensorflow_only
def test_eager_apply_compiles_one_xla_module_that_updates_every_variable():
    import tensorflow as tf

    optimizer = SGDPlus(0.1, momentum=0.9, nesterov=True)
    variables, gradients = variables_and_gradients()
    for _ in range(3):
        optimizer.apply(gradients, variables)
    compiled = optimizer._compiled._tensorflow.function
    assert compiled.experimental_get_tracing_count() == 1  # traced once, reused
    order = tuple(range(len(SHAPES)))
    hlo = compiled.experimental_get_compiler_ir(tf.constant(0.1), tuple(gradients), order, True)(
        stage="hlo"
    )
    assert hlo.count("HloModule") == 1
    assert "s64[]" in hlo  # the step counter is advanced inside it too
    # each weight and each momentum slot is an output of the one module
    for shape in SHAPES:
        dims = ",".join(map(str, shape))
        assert hlo.count(f"f32[{dims}]") >= 3, shape


@pytest.mark.tensorflow_only
def test_inside_a_plain_tf_function_the_update_is_an_xla_cluster():
    import tensorflow as tf

    optimizer = SGDPlus(0.1, momentum=0.9)
    variables, gradients = variables_and_gradients()

    @tf.function
    def step(grads):
        optimizer.apply(grads, variables)

    step(gradients)
    graph = step.get_concrete_function(gradients).graph
    must_compile = [
        op
        for op in graph.get_operations()
        if op.type in ("StatefulPartitionedCall", "PartitionedCall")
        and op.get_attr("_XlaMustCompile")
    ]
    assert len(must_compile) == 1
    # and the result is right
    reference = ReferenceSGD(learning_rate=0.1, momentum=0.9)
    expected = reference.step(
        initial_weights(SHAPES), [keras.ops.convert_to_numpy(g) for g in gradients]
    )
    for variable, want in zip(variables, expected, strict=True):
        np.testing.assert_allclose(variable.numpy(), want, rtol=1e-6)


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("jit_compile", [True, False])
def test_model_fit_calls_the_compiled_update(jit_compile):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    optimizer = SGDPlus(0.1, momentum=0.9)
    model.compile(optimizer=optimizer, loss="mse", jit_compile=jit_compile)
    model.fit(np.ones((8, 3)), np.zeros((8, 2)), epochs=1, verbose=0)
    assert optimizer._compiled._tensorflow.function.experimental_get_tracing_count() >= 1


def test_jit_compile_false_never_compiles_its_own_update():
    optimizer = SGDPlus(0.1, momentum=0.9, jit_compile=False)
    variables, gradients = variables_and_gradients()
    optimizer.apply(gradients, variables)
    assert optimizer._compiled._tensorflow is None
    assert optimizer._compiled._jax is None


@pytest.mark.jax_only
def test_eager_apply_on_jax_runs_one_jitted_function():
    optimizer = SGDPlus(0.1, momentum=0.9, nesterov=True)
    variables, gradients = variables_and_gradients()
    for _ in range(3):
        optimizer.apply(gradients, variables)
    assert optimizer._compiled._jax._cache_size() == 1


@pytest.mark.tensorflow_only  # JAX always compiles with XLA
def test_without_xla_it_warns_once_and_stays_correct(monkeypatch):
    """A platform with no XLA (none here, so the probe's answer is replaced)."""
    _backend.xla_unavailable_reason.cache_clear()
    monkeypatch.setattr(
        _backend,
        "xla_unavailable_reason",
        lambda: "XLA failed to compile a probe (no XLA on this device)",
    )
    optimizer = SGDPlus(0.1, momentum=0.9, convention="torch", decay=0.1)
    weights, gradients = initial_weights(SHAPES), gradient_sequence(SHAPES, 5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        actual = run_keras_optimizer(optimizer, weights, gradients, "float32")
    messages = [str(w.message) for w in caught if "not XLA-compiling" in str(w.message)]
    assert messages == [
        "SGDPlus is not XLA-compiling its update: XLA failed to compile a probe (no XLA on "
        "this device). It runs the graph update instead, with the same results."
    ]
    assert optimizer._compiled._tensorflow is None
    reference = ReferenceSGD(learning_rate=0.1, momentum=0.9, convention="torch", decay=0.1)
    assert_trajectories_close(
        actual, run_reference(reference, weights, gradients, "float32"), "float32"
    )


def test_xla_probe_finds_xla_here():
    assert _backend.xla_unavailable_reason() is None
