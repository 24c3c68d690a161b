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


def xla_calls_in(graph) -> int:
    """How many calls of the graph must be compiled by XLA (SGDPlus's own update)."""
    return sum(
        1
        for op in graph.get_operations()
        if op.type in ("StatefulPartitionedCall", "PartitionedCall")
        and op.get_attr("_XlaMustCompile")
    )


@pytest.mark.tensorflow_only
@pytest.mark.parametrize(
    ("shapes", "clusters"),
    [
        (SHAPES, 0),  # small: launching a computation would cost more than it saves
        ([(512, 1024), (1024,), (1024, 512)], 1),  # 2**18+ elements on average: fused
    ],
    ids=["small", "large"],
)
def test_inside_a_plain_tf_function_large_updates_are_one_xla_cluster(shapes, clusters):
    import tensorflow as tf

    weights = initial_weights(shapes)
    variables = [keras.Variable(w.astype("float32")) for w in weights]
    gradients = [
        keras.ops.convert_to_tensor(g.astype("float32")) for g in gradient_sequence(shapes, 1)[0]
    ]
    assert (sum(g.shape.num_elements() for g in gradients) >= len(shapes) * 2**18) == bool(clusters)
    optimizer = SGDPlus(0.1, momentum=0.9)

    @tf.function
    def step(grads):
        optimizer.apply(grads, variables)

    step(gradients)
    assert xla_calls_in(step.get_concrete_function(gradients).graph) == clusters
    # and the result is right either way
    reference = ReferenceSGD(learning_rate=0.1, momentum=0.9)
    expected = reference.step(weights, [keras.ops.convert_to_numpy(g) for g in gradients])
    for variable, want in zip(variables, expected, strict=True):
        np.testing.assert_allclose(variable.numpy(), want, rtol=1e-6, atol=1e-7)


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("jit_compile", [True, False])
@pytest.mark.parametrize(("units", "own_update"), [(2, False), (1024, True)])
def test_model_fit_compiles_its_own_update_only_where_it_pays(jit_compile, units, own_update):
    """In `fit` the update of small variables is part of the train step's graph (compiled
    with it where Keras compiles the step); only large variables get SGDPlus's own XLA
    computation (inlined where the step is XLA-compiled already)."""
    model = keras.Sequential([keras.Input((1024,)), keras.layers.Dense(units)])
    optimizer = SGDPlus(0.1, momentum=0.9)
    model.compile(optimizer=optimizer, loss="mse", jit_compile=jit_compile)
    model.fit(np.ones((8, 1024)), np.zeros((8, units)), epochs=1, verbose=0)
    traced = optimizer._compiled._tensorflow is not None
    assert traced == own_update


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


@pytest.mark.tensorflow_only
@pytest.mark.parametrize(
    "config", [{}, {"momentum": 0.9}, {"momentum": 0.9, "nesterov": True}], ids=str
)
def test_in_a_graph_the_update_takes_no_more_operations_than_keras_sgd(config):
    """Where the update is part of the caller's graph (small variables, as in the lab's
    models), it runs no more operations than `keras.optimizers.SGD`'s: the reason `fit`
    with SGDPlus is as fast as with SGD (benchmarks/update_step.py), counted, not timed."""
    import collections

    import tensorflow as tf

    def operations(optimizer) -> collections.Counter:
        variables, gradients = variables_and_gradients()
        optimizer.build(variables)

        @tf.function
        def step():
            optimizer.apply(gradients, variables)

        graph = step.get_concrete_function().graph
        free = {"Const", "Placeholder", "Identity", "IdentityN", "NoOp"}
        return collections.Counter(op.type for op in graph.get_operations() if op.type not in free)

    ours = operations(SGDPlus(0.1, **config))
    theirs = operations(keras.optimizers.SGD(0.1, **config))
    assert sum(ours.values()) <= sum(theirs.values()), (ours, theirs)
    assert not any(op.startswith("Xla") or "PartitionedCall" in op for op in ours)
